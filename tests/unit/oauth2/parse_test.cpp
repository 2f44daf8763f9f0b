#include "oauth2/parse.hpp"

#include <doctest/doctest.h>

#include "broker/provider.hpp"

using namespace tokenbroker;
using namespace tokenbroker::oauth2;
using namespace std::chrono_literals;

namespace {

const sys_seconds t0{std::chrono::seconds{1'800'000'000}};
constexpr const char* json_type = "application/json; charset=utf-8";

result<broker::token_bundle> parse(unsigned status, std::string_view body,
                                   std::string_view retry_after = {}) {
  return parse_token_response(status, json_type, body, t0, retry_after);
}

}  // namespace

TEST_CASE("a_full_answer_becomes_a_bundle_with_an_absolute_expiry") {
  auto r = parse(200, R"({"access_token":"at-1","token_type":"Bearer","expires_in":3599,
                          "scope":"openid api","refresh_token":"rt-2","id_token":"x.y.z"})");
  REQUIRE(r.has_value());
  CHECK(r->access_token.reveal() == "at-1");
  CHECK(r->token_type == "Bearer");
  CHECK(r->scope == "openid api");
  CHECK(r->refresh_token.reveal() == "rt-2");
  CHECK(r->obtained_at == t0);
  CHECK(r->expires_at == t0 + 3599s);
  CHECK_FALSE(r->refresh_expires_at.has_value());
}

TEST_CASE("expires_in_may_be_a_numeric_string_or_a_fraction") {
  auto s = parse(200, R"({"access_token":"a","token_type":"bearer","expires_in":"3600"})");
  REQUIRE(s.has_value());
  CHECK(s->expires_at == t0 + 3600s);
  auto f = parse(200, R"({"access_token":"a","expires_in":59.9})");
  REQUIRE(f.has_value());
  CHECK(f->expires_at == t0 + 59s);
}

TEST_CASE("a_missing_expires_in_gets_the_documented_default") {
  auto r = parse(200, R"({"access_token":"a","token_type":"Bearer"})");
  REQUIRE(r.has_value());
  CHECK(r->expires_at == t0 + default_expires_in);
  CHECK(r->token_type == "Bearer");
}

TEST_CASE("an_absent_refresh_token_leaves_the_bundle_without_one") {
  auto r = parse(200, R"({"access_token":"a","expires_in":60})");
  REQUIRE(r.has_value());
  CHECK_FALSE(r->has_refresh_token());
}

TEST_CASE("huge_lifetimes_are_clamped_and_refresh_expires_in_is_kept") {
  auto r = parse(200, R"({"access_token":"a","expires_in":1e300,"refresh_expires_in":1800})");
  REQUIRE(r.has_value());
  CHECK(r->expires_at == t0 + max_expires_in);
  REQUIRE(r->refresh_expires_at.has_value());
  CHECK(*r->refresh_expires_at == t0 + 1800s);
}

TEST_CASE("malformed_success_answers_are_malformed_and_retried") {
  for (const char* body :
       {"", "not json", "[]", R"({"token_type":"Bearer"})", R"({"access_token":""})",
        R"({"access_token":5})", R"({"access_token":"a","expires_in":-1})",
        R"({"access_token":"a","expires_in":"soon"})", R"({"access_token":"a","expires_in":true})",
        R"({"access_token":"a","refresh_token":7})", R"({"access_token":"a","scope":["x"]})",
        R"({"access_token":"a","token_type":""})", R"({"access_token":"a","id_token":{}})"}) {
    CAPTURE(body);
    auto r = parse(200, body);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);
    CHECK(broker::classify(r.error()) == broker::failure_class::retry);
  }
}

TEST_CASE("invalid_grant_means_the_grant_is_dead") {
  auto r = parse(400, R"({"error":"invalid_grant","error_description":"refresh token expired"})");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::unauthorized);
  CHECK(broker::classify(r.error()) == broker::failure_class::grant_dead);
  CHECK(r.error().message == "token endpoint: invalid_grant: refresh token expired");
}

TEST_CASE("client_and_request_errors_are_fatal_with_the_providers_description") {
  for (const char* code : {"invalid_client", "unauthorized_client", "invalid_request",
                           "unsupported_grant_type", "invalid_scope", "something_new"}) {
    CAPTURE(code);
    for (unsigned status : {400u, 401u}) {
      auto r = parse(status, std::string(R"({"error":")") + code +
                                 R"(","error_description":"AADSTS7000215: Invalid client secret"})");
      REQUIRE_FALSE(r.has_value());
      CHECK(r.error().code == errc::refused);
      CHECK(broker::classify(r.error()) == broker::failure_class::fatal);
      CHECK(r.error().message == std::string("token endpoint: ") + code +
                                     ": AADSTS7000215: Invalid client secret");
    }
  }
}

TEST_CASE("a_bare_401_or_403_is_fatal_not_a_dead_grant") {
  for (unsigned status : {401u, 403u, 404u}) {
    auto r = parse_token_response(status, "text/html", "<html>nope</html>", t0);
    REQUIRE_FALSE(r.has_value());
    CHECK(broker::classify(r.error()) == broker::failure_class::fatal);
    CHECK(r.error().message == "token endpoint: HTTP " + std::to_string(status) + " (text/html answer)");
  }
}

TEST_CASE("overload_and_server_errors_are_retried_honouring_retry_after") {
  auto r503 = parse_token_response(503, "text/plain", "busy", t0, "7");
  REQUIRE_FALSE(r503.has_value());
  CHECK(broker::classify(r503.error()) == broker::failure_class::retry);
  CHECK(r503.error().retry_after == 7s);

  auto r429 = parse(429, R"({"error":"slow_down"})", "Fri, 15 Jan 2027 08:00:30 GMT");
  REQUIRE_FALSE(r429.has_value());
  CHECK(broker::classify(r429.error()) == broker::failure_class::retry);
  CHECK(r429.error().retry_after == 30s);  // t0 is 2027-01-15T08:00:00Z

  auto tu = parse(400, R"({"error":"temporarily_unavailable"})", "100000");
  REQUIRE_FALSE(tu.has_value());
  CHECK(broker::classify(tu.error()) == broker::failure_class::retry);
  CHECK(tu.error().retry_after == max_retry_after);
}

TEST_CASE("an_error_object_with_status_200_is_still_an_error") {
  auto r = parse(200, R"({"error":"invalid_grant"})");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::unauthorized);
}

TEST_CASE("descriptions_are_sanitized_and_bounded") {
  std::string evil = R"({"error":"invalid_client\u001b[31m","error_description":")" +
                     std::string(500, 'x') + R"(\n\u0000ok"})";
  auto r = parse(401, evil);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find('\x1b') == std::string::npos);
  CHECK(r.error().message.find('\n') == std::string::npos);
  CHECK(r.error().message.size() < 300);
  CHECK(sanitize("a\tb\n\n c\xff", 100) == "a b c?");
  CHECK(sanitize("abcdef", 3) == "abc...");
}

TEST_CASE("redact_removes_every_occurrence_of_each_secret") {
  secret rt{"rt-abc"}, cs{"cs-xyz"}, empty;
  CHECK(redact("token rt-abc is bad; rt-abc again, cs-xyz", {&rt, &cs, &empty}) ==
        "token <redacted> is bad; <redacted> again, <redacted>");
}

TEST_CASE("oversized_answers_are_refused_unread") {
  std::string big(max_token_response + 1, ' ');
  auto r = parse(200, big);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::malformed);
}
