#include "privicore/parse.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker;
using namespace tokenbroker::privicore;
using namespace std::chrono_literals;

namespace {

http::response answer(int status, std::string body) {
  http::response r{static_cast<http::status>(status), 11};
  r.set(http::field::content_type, "application/json");
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

sys_seconds at(std::string_view text) { return parse_timestamp(text).value(); }

const sys_seconds now = at("2026-01-01T00:00:00Z");

}  // namespace

// --- errors ---------------------------------------------------------------------------------

TEST_CASE("non_2xx_maps_to_http_status_with_the_servers_message") {
  auto e = response_error(answer(401, R"({"message":"invalid credentials"})"), now);
  CHECK(e.code == errc::http_status);
  CHECK(e.status == 401);
  CHECK(e.message == "Unauthorized: invalid credentials");
  CHECK(e.retry_after == 0s);
}

TEST_CASE("error_message_joins_error_and_error_description_and_nested_error_objects") {
  auto e = response_error(
      answer(422, R"({"error":"oauth.already_retrieved","error_description":"gone"})"), now);
  CHECK(e.message == "Unprocessable Entity: oauth.already_retrieved: gone");
  auto nested = response_error(answer(400, R"({"error":{"code":"x.y","message":"bad"}})"), now);
  CHECK(nested.message == "Bad Request: x.y: bad");
  auto bare = response_error(answer(403, R"("profile.not_an_owner")"), now);
  CHECK(bare.message == "Forbidden: profile.not_an_owner");
  auto validation = response_error(answer(422, R"({"errors":{"ttl":["too big"]}})"), now);
  CHECK(validation.message == R"(Unprocessable Entity: {"ttl":["too big"]})");
}

TEST_CASE("error_message_never_echoes_a_non_json_body_and_truncates_long_reasons") {
  auto html = response_error(answer(502, "<html>secret-ish proxy page</html>"), now);
  CHECK(html.status == 502);
  CHECK(html.message == "Bad Gateway");
  auto long_reason = response_error(answer(500, R"({"message":")" + std::string(500, 'x') + "\"}"),
                                    now);
  CHECK(long_reason.message.size() < 230);
  CHECK(long_reason.message.ends_with("..."));
  auto control = response_error(answer(400, R"({"message":"a\nb\u0001c"})"), now);
  CHECK(control.message == "Bad Request: a b c");
}

TEST_CASE("retry_after_is_parsed_into_the_error") {
  auto r = answer(503, "");
  r.set(http::field::retry_after, "120");
  CHECK(response_error(r, now).retry_after == 120s);
  r.set(http::field::retry_after, "Thu, 01 Jan 2026 00:00:30 GMT");
  CHECK(response_error(r, now).retry_after == 30s);
  auto p = parse_profile_token(r);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().status == 503);
}

TEST_CASE("redact_removes_every_copy_of_a_secret_but_not_short_values") {
  std::string text = "token abcd1234 and abcd1234";
  redact(text, "abcd1234");
  CHECK(text == "token <redacted> and <redacted>");
  std::string shorter = "a b c";
  redact(shorter, "b");
  CHECK(shorter == "a b c");
}

// --- command ids and status -----------------------------------------------------------------

TEST_CASE("command_id_accepts_bare_string_one_element_array_and_objects") {
  CHECK(parse_command_id(answer(202, R"("7c0f1f3e-1")")).value() == "7c0f1f3e-1");
  CHECK(parse_command_id(answer(202, R"(["7c0f1f3e-2"])")).value() == "7c0f1f3e-2");
  CHECK(parse_command_id(answer(202, R"({"commandId":"7c0f1f3e-3"})")).value() == "7c0f1f3e-3");
  CHECK(parse_command_id(answer(200, R"({"id":"7c0f1f3e-4"})")).value() == "7c0f1f3e-4");
}

TEST_CASE("command_id_rejects_empty_multi_element_missing_and_invalid_json") {
  for (const char* body : {R"("")", R"(["a","b"])", R"({"other":"x"})", "not json", R"(42)",
                           R"("has space")"}) {
    auto r = parse_command_id(answer(202, body));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);
  }
  auto missing = parse_command_id(answer(202, R"({"other":"x"})"));
  CHECK(missing.error().message.find("commandId") != std::string::npos);
  auto refused = parse_command_id(answer(422, R"({"message":"bad scopes"})"));
  CHECK(refused.error().code == errc::http_status);
  CHECK(refused.error().status == 422);
}

TEST_CASE("command_status_maps_started_succeeded_rejected_strings_and_arrays") {
  auto started = parse_command_status(answer(200, R"("started")"), "c1");
  CHECK(started.value().state == command_state::pending);
  CHECK(started.value().id == "c1");
  auto ok = parse_command_status(answer(200, R"(["succeeded"])"), "c1");
  CHECK(ok.value().state == command_state::succeeded);
  auto rejected = parse_command_status(answer(200, R"("rejected")"), "c1");
  CHECK(rejected.value().state == command_state::rejected);
  CHECK(rejected.value().body == "rejected");
  // PRB treats every other string as terminal (§5.2).
  auto failed = parse_command_status(answer(200, R"("failed")"), "c1");
  CHECK(failed.value().state == command_state::rejected);
  CHECK(failed.value().body == "failed");
}

TEST_CASE("command_status_accepts_the_numeric_object_form_with_body") {
  auto pending = parse_command_status(
      answer(200, R"({"commandId":"c2","command_status":1,"body":null})"), "c2");
  CHECK(pending.value().state == command_state::pending);
  auto ok = parse_command_status(answer(200, R"({"command_status":2,"body":"done"})"), "c2");
  CHECK(ok.value().state == command_state::succeeded);
  CHECK(ok.value().body == "done");
  auto failed = parse_command_status(
      answer(200, R"({"command_status":3,"body":"profile.not_an_owner"})"), "c2");
  CHECK(failed.value().state == command_state::rejected);
  CHECK(failed.value().body == "profile.not_an_owner");
  auto bad = parse_command_status(answer(200, R"({"command_status":7})"), "c2");
  CHECK(bad.error().code == errc::malformed);
  auto none = parse_command_status(answer(200, R"({"body":"x"})"), "c2");
  CHECK(none.error().message.find("command_status") != std::string::npos);
}

// --- profile session ------------------------------------------------------------------------

TEST_CASE("profile_token_reads_authorization_token_and_offset_or_z_expiry") {
  auto a = parse_profile_token(
      answer(200, R"({"authorizationToken":"pt-1","expiresAt":"2026-02-21T15:33:44+00:00"})"));
  REQUIRE(a.has_value());
  CHECK(a->token.reveal() == "pt-1");
  CHECK(a->expires_at == at("2026-02-21T15:33:44Z"));
  auto z = parse_profile_token(
      answer(200, R"({"authorizationToken":"pt-2","expiresAt":"2027-04-21T12:00:00Z"})"));
  CHECK(z.value().expires_at == at("2027-04-21T12:00:00+00:00"));
}

TEST_CASE("profile_token_missing_fields_are_malformed_naming_the_field") {
  auto no_token = parse_profile_token(answer(200, R"({"expiresAt":"2027-04-21T12:00:00Z"})"));
  CHECK(no_token.error().code == errc::malformed);
  CHECK(no_token.error().message.find("authorizationToken") != std::string::npos);
  auto no_expiry = parse_profile_token(answer(200, R"({"authorizationToken":"pt"})"));
  CHECK(no_expiry.error().message.find("expiresAt") != std::string::npos);
  auto bad_expiry =
      parse_profile_token(answer(200, R"({"authorizationToken":"pt","expiresAt":"soon"})"));
  CHECK(bad_expiry.error().code == errc::malformed);
  CHECK(bad_expiry.error().message.find("pt") == std::string::npos);
  auto not_json = parse_profile_token(answer(200, "{"));
  CHECK(not_json.error().code == errc::malformed);
  auto unauthorized = parse_profile_token(answer(401, R"({"message":"invalid credentials"})"));
  CHECK(unauthorized.error().code == errc::http_status);
  CHECK(unauthorized.error().status == 401);
}

TEST_CASE("token_expiry_reads_expires_at") {
  CHECK(parse_token_expiry(answer(200, R"({"expiresAt":"2026-02-21T15:33:44+00:00"})")).value() ==
        at("2026-02-21T15:33:44Z"));
  CHECK(parse_token_expiry(answer(200, "{}")).error().code == errc::malformed);
}

TEST_CASE("reauthorize_accepts_a_new_token_or_a_command_id_or_nothing") {
  auto token = parse_reauthorize(
      answer(200, R"({"authorizationToken":"pt-new","expiresAt":"2027-04-21T12:00:00Z"})"));
  REQUIRE(token.has_value());
  REQUIRE(token->token.has_value());
  CHECK(token->token->token.reveal() == "pt-new");
  CHECK_FALSE(token->command_id.has_value());
  auto command = parse_reauthorize(answer(202, R"(["cmd-9"])"));
  CHECK(command.value().command_id == "cmd-9");
  CHECK_FALSE(command.value().token.has_value());
  auto empty = parse_reauthorize(answer(202, ""));
  CHECK(empty.has_value());
  CHECK_FALSE(empty->token.has_value());
  CHECK_FALSE(empty->command_id.has_value());
}

TEST_CASE("revoke_accepts_any_2xx_and_maps_401") {
  CHECK(parse_no_content(answer(200, "")).has_value());
  CHECK(parse_no_content(answer(204, "")).has_value());
  CHECK(parse_no_content(answer(401, "")).error().status == 401);
}

TEST_CASE("health_reads_status_text") {
  CHECK(parse_health(answer(200, R"({"status":"ok"})")).value() == "ok");
  CHECK(parse_health(answer(200, "")).value().empty());
  CHECK(parse_health(answer(503, "")).error().status == 503);
}

// --- OAuth application ----------------------------------------------------------------------

TEST_CASE("app_config_reads_client_id_and_secret_and_optional_fields") {
  auto c = parse_app_config(answer(200, R"({"applicationId":"app-1","clientId":"cid",
      "clientSecret":"cs","redirectUri":"https://x/cb","scopes":["data-token:read"]})"),
                            "app-1");
  REQUIRE(c.has_value());
  CHECK(c->application_id == "app-1");
  CHECK(c->client_id == "cid");
  CHECK(c->client_secret.reveal() == "cs");
  CHECK(c->redirect_uri == "https://x/cb");
  CHECK(c->scopes == std::vector<std::string>{"data-token:read"});
  auto minimal = parse_app_config(answer(200, R"({"clientId":"cid","clientSecret":"cs"})"), "a2");
  CHECK(minimal.value().application_id == "a2");
  auto comma = parse_app_config(
      answer(200, R"({"clientId":"c","clientSecret":"s","scopes":"a:read,b:write"})"), "a3");
  CHECK(comma.value().scopes == std::vector<std::string>{"a:read", "b:write"});
  auto no_secret = parse_app_config(answer(200, R"({"clientId":"cid"})"), "a");
  CHECK(no_secret.error().message.find("clientSecret") != std::string::npos);
}

TEST_CASE("authorization_code_reads_code_nonce_client_and_expiry") {
  auto c = parse_authorization_code(answer(200, R"({"clientId":"cid","nonce":"n1",
      "authorizationCode":"ac-1","expiresAt":"2025-02-10T10:03:06+00:00"})"));
  REQUIRE(c.has_value());
  CHECK(c->code.reveal() == "ac-1");
  CHECK(c->nonce == "n1");
  CHECK(c->client_id == "cid");
  CHECK(c->expires_at == at("2025-02-10T10:03:06Z"));
  auto bare = parse_authorization_code(answer(200, R"({"authorizationCode":"ac-2"})"));
  CHECK_FALSE(bare.value().expires_at.has_value());
  CHECK(parse_authorization_code(answer(200, R"({"code":"x"})")).error().code == errc::malformed);
  CHECK(parse_authorization_code(answer(404, "")).error().status == 404);
}

TEST_CASE("application_list_accepts_items_object_or_bare_array") {
  auto l = parse_application_list(answer(200, R"({"items":[{"applicationId":"a1","name":"One",
      "scopes":["s"],"createdAt":"2026-01-01T00:00:00Z"}],"meta":{"count":1}})"));
  REQUIRE(l.has_value());
  REQUIRE(l->size() == 1);
  CHECK((*l)[0].application_id == "a1");
  CHECK((*l)[0].name == "One");
  CHECK((*l)[0].created_at == now);
  auto bare = parse_application_list(answer(200, R"([{"id":"a2"}])"));
  CHECK(bare.value().at(0).application_id == "a2");
  CHECK(parse_application_list(answer(200, R"({"meta":{}})")).error().code == errc::malformed);
}

TEST_CASE("json_body_is_returned_raw_and_empty_is_null") {
  CHECK(parse_json_body(answer(200, R"({"scope":["all"]})")).value()["scope"][0] == "all");
  CHECK(parse_json_body(answer(200, "")).value().is_null());
}

// --- tokens ---------------------------------------------------------------------------------

TEST_CASE("token_set_reads_the_documented_obtain_access_token_answer") {
  auto t = parse_token_set(answer(200, R"({"clientId":"example_client_id","token":"at-1",
      "refreshToken":"rt-1","type":"bearer","scope":"all",
      "expiresAt":"2025-02-10T10:03:06+00:00","refreshTokenExpiresAt":"2025-03-10T10:03:06Z"})"),
                           now);
  REQUIRE(t.has_value());
  CHECK(t->access_token.reveal() == "at-1");
  CHECK(t->refresh_token.reveal() == "rt-1");
  CHECK(t->type == "bearer");
  CHECK(t->scope == "all");
  CHECK(t->client_id == "example_client_id");
  CHECK(t->expires_at == at("2025-02-10T10:03:06Z"));
  CHECK(t->refresh_expires_at == at("2025-03-10T10:03:06Z"));
}

TEST_CASE("token_field_wins_over_access_token_fallbacks") {
  auto both = parse_token_set(
      answer(200, R"({"token":"right","accessToken":"wrong","expiresAt":"2026-01-01T00:00:00Z"})"),
      now);
  CHECK(both.value().access_token.reveal() == "right");
  auto fallback = parse_token_set(
      answer(200, R"({"accessToken":"at-2","tokenType":"Bearer","expiresAt":"2026-01-01T00:00:00Z"})"),
      now);
  CHECK(fallback.value().access_token.reveal() == "at-2");
  CHECK(fallback.value().type == "Bearer");
  CHECK(fallback.value().refresh_token.empty());
  auto snake = parse_token_set(
      answer(200, R"({"access_token":"at-3","expires_at":"2026-01-01T00:00:00Z"})"), now);
  CHECK(snake.value().access_token.reveal() == "at-3");
  CHECK(snake.value().type == "bearer");
  auto non_string = parse_token_set(
      answer(200, R"({"token":5,"accessToken":"x","expiresAt":"2026-01-01T00:00:00Z"})"), now);
  CHECK(non_string.error().message.find("\"token\"") != std::string::npos);
}

TEST_CASE("expires_in_is_relative_to_now_only_when_expires_at_is_absent") {
  auto rel = parse_token_set(answer(200, R"({"token":"t","expiresIn":3600})"), now);
  CHECK(rel.value().expires_at == now + 1h);
  auto abs = parse_token_set(
      answer(200, R"({"token":"t","expiresIn":3600,"expiresAt":"2026-01-01T00:00:10Z"})"), now);
  CHECK(abs.value().expires_at == now + 10s);
  auto none = parse_token_set(answer(200, R"({"token":"t"})"), now);
  CHECK(none.error().message.find("expiresAt") != std::string::npos);
  auto scopes = parse_token_set(
      answer(200, R"({"token":"t","expiresIn":"60","scope":["a:read","b:write"]})"), now);
  CHECK(scopes.value().scope == "a:read b:write");
  CHECK(scopes.value().expires_at == now + 60s);
}

TEST_CASE("refresh_202_with_empty_or_whitespace_body_is_accepted_without_tokens") {
  for (const char* body : {"", "  \r\n"}) {
    auto r = parse_refresh(answer(202, body), now);
    REQUIRE(r.has_value());
    CHECK_FALSE(r->tokens.has_value());
  }
}

TEST_CASE("refresh_200_with_empty_body_is_also_accepted_without_tokens") {
  auto r = parse_refresh(answer(200, ""), now);
  REQUIRE(r.has_value());
  CHECK_FALSE(r->tokens.has_value());
}

TEST_CASE("refresh_200_with_body_returns_tokens_and_keeps_no_refresh_token_when_absent") {
  auto r = parse_refresh(answer(200, R"({"token":"at-new","expiresAt":"2026-01-01T01:00:00Z"})"),
                         now);
  REQUIRE(r.has_value());
  REQUIRE(r->tokens.has_value());
  CHECK(r->tokens->access_token.reveal() == "at-new");
  CHECK(r->tokens->refresh_token.empty());
  auto broken = parse_refresh(answer(200, R"({"unexpected":true})"), now);
  CHECK(broken.error().code == errc::malformed);
  auto accepted = parse_refresh(answer(202, R"({"unexpected":true})"), now);
  CHECK_FALSE(accepted.value().tokens.has_value());
}

TEST_CASE("refresh_401_and_422_are_http_errors") {
  auto r = parse_refresh(answer(401, R"({"message":"refresh token revoked"})"), now);
  CHECK(r.error().code == errc::http_status);
  CHECK(r.error().status == 401);
  CHECK(r.error().message.find("refresh token revoked") != std::string::npos);
  CHECK(parse_refresh(answer(422, ""), now).error().status == 422);
}

// Found by fuzz_privicore_parse: expiresIn 1e308 was cast to an integer (undefined behaviour),
// and a huge whole number overflowed now + expiresIn. A lifetime beyond ten years is clamped to
// ten years, like an absolute expiry; only what is not a lifetime at all is malformed.
TEST_CASE("an_absurd_expires_in_is_clamped_to_ten_years_not_overflowed") {
  for (const char* v : {"1e308", "9223372036854775807", "18446744073709551615", "316300000",
                        "1e12", "\"9223372036854775807\""}) {
    CAPTURE(v);
    auto r = parse_token_set(answer(200, std::string(R"({"token":"t","expiresIn":)") + v + "}"), now);
    REQUIRE(r.has_value());
    CHECK(r->expires_at == now + max_expiry_horizon);
  }
  for (const char* v : {"-1e308", "-1", "\"99999999999999999999\"", "\"soon\"", "true"}) {
    CAPTURE(v);
    auto r = parse_token_set(answer(200, std::string(R"({"token":"t","expiresIn":)") + v + "}"), now);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);
  }
  auto ok = parse_token_set(answer(200, R"({"token":"t","expiresIn":3600.5})"), now);
  REQUIRE(ok.has_value());
  CHECK(ok->expires_at == now + 3600s);
  auto refresh = parse_token_set(
      answer(200, R"({"token":"t","expiresIn":60,"refreshTokenExpiresIn":1e300})"), now);
  REQUIRE(refresh.has_value());
  CHECK(refresh->refresh_expires_at == now + max_expiry_horizon);
}

TEST_CASE("clamp_expiry_keeps_expiries_within_ten_years_of_now") {
  CHECK(clamp_expiry(at("9999-12-31T23:59:59Z"), now) == now + max_expiry_horizon);
  CHECK(clamp_expiry(at("0001-01-01T00:00:00Z"), now) == now - max_expiry_horizon);
  CHECK(clamp_expiry(now + 1h, now) == now + 1h);
  CHECK(clamp_expiry(now - 1h, now) == now - 1h);
  CHECK(max_expiry_horizon > std::chrono::hours{24 * 365 * 10});
}

// Timestamps after 2262 (or before 1677) overflow system_clock's nanoseconds, which the engine
// compares expiries with: every expiry Privicore sends is clamped to ten years of now.
TEST_CASE("far_future_and_far_past_expiries_are_clamped_to_ten_years_of_now") {
  auto far = parse_token_set(answer(200, R"({"token":"t","expiresAt":"9999-12-31T23:59:59Z",
      "refreshTokenExpiresAt":"2300-01-01T00:00:00Z"})"), now);
  REQUIRE(far.has_value());
  CHECK(far->expires_at == now + max_expiry_horizon);
  CHECK(far->refresh_expires_at == now + max_expiry_horizon);
  auto past = parse_token_set(answer(200, R"({"token":"t","expiresAt":"0000-01-01T00:00:00Z"})"), now);
  REQUIRE(past.has_value());
  CHECK(past->expires_at == now - max_expiry_horizon);
  auto near = parse_token_set(answer(200, R"({"token":"t","expiresAt":"2035-12-01T00:00:00Z"})"), now);
  CHECK(near.value().expires_at == at("2035-12-01T00:00:00Z"));  // within ten years: as sent

  // The answers without a `now` of their own are clamped around the wall clock.
  auto before = std::chrono::floor<std::chrono::seconds>(system_clock::now());
  auto profile = parse_profile_token(
      answer(200, R"({"authorizationToken":"pt","expiresAt":"9999-12-31T23:59:59Z"})"));
  auto expiry = parse_token_expiry(answer(200, R"({"expiresAt":"2263-01-01T00:00:00Z"})"));
  auto code = parse_authorization_code(
      answer(200, R"({"authorizationCode":"ac","expiresAt":"1000-01-01T00:00:00Z"})"));
  auto after = std::chrono::floor<std::chrono::seconds>(system_clock::now());
  REQUIRE(profile.has_value());
  CHECK(profile->expires_at >= before + max_expiry_horizon);
  CHECK(profile->expires_at <= after + max_expiry_horizon);
  REQUIRE(expiry.has_value());
  CHECK(*expiry >= before + max_expiry_horizon);
  CHECK(*expiry <= after + max_expiry_horizon);
  REQUIRE(code.has_value());
  REQUIRE(code->expires_at.has_value());
  CHECK(*code->expires_at >= before - max_expiry_horizon);
  CHECK(*code->expires_at <= after - max_expiry_horizon);
  // What the engine does with them: compare with (and subtract from) system_clock::now().
  CHECK(profile->expires_at > system_clock::now());
  CHECK(*code->expires_at < system_clock::now());
}
