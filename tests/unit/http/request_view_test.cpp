#include "http/request_view.hpp"

#include <doctest/doctest.h>

#include <string>

namespace tokenbroker::http {

TEST_CASE("a_plain_get_is_read_with_its_fields_and_keep_alive") {
  std::string wire =
      "GET /v1/token/app?min_valid=30 HTTP/1.1\r\nHost: localhost\r\n"
      "X-Token-Broker:   1  \r\nuser-agent: curl/7.88\r\n\r\nGET /next HTTP/1.1\r\n";
  auto r = parse_simple_request(wire, 16 * 1024);
  REQUIRE(r);
  CHECK(r->target == "/v1/token/app?min_valid=30");
  CHECK(r->version == 11);
  CHECK(r->keep_alive);
  CHECK(r->header_bytes == wire.find("GET /next"));  // a pipelined request stays unread
  auto v = r->view();
  CHECK(v.method() == verb::get);
  CHECK(v.field("x-token-broker") == "1");  // case-insensitive, surrounding spaces dropped
  CHECK(v.field("User-Agent") == "curl/7.88");
  CHECK_FALSE(v.field("Origin"));
}

TEST_CASE("connection_fields_decide_keep_alive_as_beast_reads_them") {
  auto keep = [](const std::string& version, const std::string& connection) {
    std::string wire = "GET / " + version + "\r\n" + connection + "\r\n";
    auto r = parse_simple_request(wire, 1024);
    REQUIRE(r);
    return r->keep_alive;
  };
  CHECK(keep("HTTP/1.1", ""));
  CHECK_FALSE(keep("HTTP/1.1", "Connection: close\r\n"));
  CHECK_FALSE(keep("HTTP/1.1", "Connection: keep-alive, Close\r\n"));
  CHECK_FALSE(keep("HTTP/1.0", ""));
  CHECK(keep("HTTP/1.0", "connection: Keep-Alive\r\n"));
}

TEST_CASE("anything_beyond_the_plain_shape_is_left_to_beasts_parser") {
  auto simple = [](const std::string& wire) { return parse_simple_request(wire, 1024).has_value(); };
  CHECK(simple("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  // Incomplete, or past the header limit.
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nHost: x\r\n"));
  CHECK_FALSE(parse_simple_request("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 20));
  // Other methods and request-line shapes.
  CHECK_FALSE(simple("POST /a HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(simple("get /a HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(simple("GET http://x/a HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(simple("GET  /a HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(simple("GET /a b HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/2.0\r\n\r\n"));
  CHECK_FALSE(simple("GET /a\x01 HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(simple("GET /a\tb HTTP/1.1\r\n\r\n"));
  // A body, or its framing, in any spelling.
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
  // Framing tricks: bare LF, obs-fold, space before the colon, control bytes, a second
  // Connection, a field name that is not a token.
  CHECK_FALSE(simple("GET /a HTTP/1.1\nHost: x\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nHost: x\nContent-Length: 5\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nContent-Length : 5\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nHost: x\ry\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nhé: x\r\n\r\n"));
  CHECK_FALSE(simple("GET /a HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n"));
}

TEST_CASE("more_fields_than_the_view_holds_are_left_to_beast") {
  std::string wire = "GET /a HTTP/1.1\r\n";
  for (std::size_t i = 0; i < simple_request::max_fields; ++i)
    wire += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(parse_simple_request(wire + "\r\n", 4096));
  CHECK_FALSE(parse_simple_request(wire + "X-last: v\r\n\r\n", 4096));
}

TEST_CASE("a_view_over_a_beast_header_finds_fields_the_same_way") {
  bhttp::request_header<> h;
  h.method(verb::post);
  h.target("/v1/proxy/app/x");
  h.version(10);
  h.set("X-Token-Broker", "1");
  request_view v(h);
  CHECK(v.method() == verb::post);
  CHECK(v.target() == "/v1/proxy/app/x");
  CHECK(v.version() == 10);
  CHECK(v.field("x-token-broker") == "1");
  CHECK_FALSE(v.field("Origin"));
}

}  // namespace tokenbroker::http
