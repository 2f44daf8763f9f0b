#include "oauth2/discovery.hpp"

#include <doctest/doctest.h>

#include "broker/provider.hpp"

using namespace tokenbroker;
using namespace tokenbroker::oauth2;

TEST_CASE("the_discovery_url_keeps_the_issuer_path") {
  auto a = http::url::parse("https://login.example.com/tenant/v2.0/").value();
  CHECK(discovery_url(a).target() == "/tenant/v2.0/.well-known/openid-configuration");
  CHECK(issuer_string(a) == "https://login.example.com/tenant/v2.0");
  auto b = http::url::parse("http://127.0.0.1:4444").value();
  CHECK(discovery_url(b).target() == "/.well-known/openid-configuration");
  CHECK(issuer_string(b) == "http://127.0.0.1:4444");
}

TEST_CASE("a_matching_document_gives_the_endpoints") {
  auto r = parse_discovery(200, R"({"issuer":"https://idp.example.com/",
      "token_endpoint":"https://idp.example.com/oauth/token",
      "authorization_endpoint":"https://idp.example.com/oauth/authorize"})",
                           "https://idp.example.com");
  REQUIRE(r.has_value());
  CHECK(r->token.host == "idp.example.com");
  CHECK(r->token.path == "/oauth/token");
  REQUIRE(r->authorization.has_value());
  CHECK(r->authorization->path == "/oauth/authorize");
}

TEST_CASE("another_issuer_is_refused_and_not_retried") {
  auto r = parse_discovery(200, R"({"issuer":"https://evil.example.com",
      "token_endpoint":"https://evil.example.com/token"})", "https://idp.example.com");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::refused);
  CHECK(broker::classify(r.error()) == broker::failure_class::fatal);
}

TEST_CASE("plain_http_endpoints_are_refused_unless_loopback") {
  auto bad = parse_discovery(200, R"({"issuer":"https://idp.example.com",
      "token_endpoint":"http://idp.example.com/token"})", "https://idp.example.com");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == errc::refused);
  auto ok = parse_discovery(200, R"({"issuer":"http://127.0.0.1:9",
      "token_endpoint":"http://127.0.0.1:9/token"})", "http://127.0.0.1:9");
  CHECK(ok.has_value());
}

TEST_CASE("failed_or_garbled_discovery_is_retried") {
  auto s = parse_discovery(503, "", "https://idp.example.com");
  REQUIRE_FALSE(s.has_value());
  CHECK(broker::classify(s.error()) == broker::failure_class::retry);
  for (const char* body : {"", "<html>", R"({"issuer":"https://idp.example.com"})"}) {
    auto r = parse_discovery(200, body, "https://idp.example.com");
    REQUIRE_FALSE(r.has_value());
    CHECK(broker::classify(r.error()) == broker::failure_class::retry);
  }
}
