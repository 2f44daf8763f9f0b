#include "http/url.hpp"

#include <doctest/doctest.h>

using tokenbroker::http::url;

TEST_CASE("url_parses_scheme_host_port_path_query") {
  auto u = url::parse("https://sandbox.privicore.com:9009/base?x=1");
  REQUIRE(u.has_value());
  CHECK(u->scheme == "https");
  CHECK(u->host == "sandbox.privicore.com");
  CHECK(u->port == 9009);
  CHECK(u->path == "/base");
  CHECK(u->query == "x=1");
  CHECK(u->tls());
  CHECK_FALSE(u->loopback());
  CHECK(u->host_header() == "sandbox.privicore.com:9009");
  CHECK(u->join("/profile/authenticate").target() == "/base/profile/authenticate");
}

TEST_CASE("url_defaults_ports_and_paths") {
  auto u = url::parse("http://127.0.0.1");
  REQUIRE(u.has_value());
  CHECK(u->port == 80);
  CHECK(u->path == "/");
  CHECK(u->loopback());
  CHECK(u->host_header() == "127.0.0.1");
  auto v = url::parse("wss://[::1]:8083");
  REQUIRE(v.has_value());
  CHECK(v->host == "::1");
  CHECK(v->loopback());
  CHECK(v->host_header() == "[::1]:8083");
  CHECK(url::parse("http://localhost:1/")->loopback());
}

TEST_CASE("url_rejects_what_it_cannot_use_safely") {
  CHECK_FALSE(url::parse("ftp://x").has_value());
  CHECK_FALSE(url::parse("example.com").has_value());
  CHECK_FALSE(url::parse("http://user:pw@host/").has_value());
  CHECK_FALSE(url::parse("http://host:0/").has_value());
  CHECK_FALSE(url::parse("http://host:70000/").has_value());
  CHECK_FALSE(url::parse("http://host/#frag").has_value());
  CHECK_FALSE(url::parse("http:///path").has_value());
}
