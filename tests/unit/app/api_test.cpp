// The token answer's body: written by hand on the hot path, it must be the JSON that
// nlohmann::json would write for the same values, whatever the provider put in the token.
#include "app/api.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace tokenbroker;
using json = nlohmann::json;

namespace {

std::string reference(const broker::served_token& t, sys_seconds now) {
  json j{{"access_token", t.access_token.reveal()},
         {"token_type", t.token_type},
         {"expires_at", format_timestamp(t.expires_at)},
         {"expires_in", std::max<std::int64_t>((t.expires_at - now).count(), 0)},
         {"scope", t.scope}};
  return j.dump() + '\n';
}

}  // namespace

TEST_CASE("the_token_body_is_the_json_of_its_values_for_every_kind_of_text") {
  sys_seconds now{std::chrono::seconds{1'800'000'000}};
  const std::string tokens[] = {
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
      "quote\"back\\slash/solidus",
      std::string("controls\b\f\n\r\t\x01\x1f\x7f end"),
      std::string("nul\0inside", 10),
      "caf\xc3\xa9 \xe2\x82\xac",  // UTF-8: passed through as nlohmann does
      "",
  };
  for (const auto& tok : tokens) {
    CAPTURE(tok);
    broker::served_token t{secret(tok), "Bearer", "read write\"x", now + std::chrono::seconds{90}};
    auto body = app::token_json(t, now);
    CHECK(body == reference(t, now));
    CHECK(json::parse(body)["access_token"] == tok);
  }
  // Expiry formatting follows the token (the formatted text is cached per expiry).
  broker::served_token a{secret("a"), "Bearer", "", now + std::chrono::seconds{10}};
  broker::served_token b{secret("b"), "Bearer", "", now + std::chrono::seconds{7200}};
  CHECK(app::token_json(a, now) == reference(a, now));
  CHECK(app::token_json(b, now) == reference(b, now));
  CHECK(app::token_json(a, now) == reference(a, now));
  // Past expiry never goes negative.
  CHECK(json::parse(app::token_json(a, now + std::chrono::seconds{60}))["expires_in"] == 0);
}

TEST_CASE("a_token_that_is_not_utf8_is_refused_rather_than_sent_as_broken_json") {
  sys_seconds now{std::chrono::seconds{1'800'000'000}};
  broker::served_token t{secret("bad\xff"), "Bearer", "", now + std::chrono::seconds{90}};
  CHECK_THROWS_AS(app::token_json(t, now), json::type_error);
}
