#include "app/proxy_wire.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace tokenbroker::app {

namespace bhttp = http::bhttp;

namespace {

template <bool IsRequest>
bhttp::message<IsRequest, bhttp::empty_body> parse_head(const std::string& wire) {
  bhttp::parser<IsRequest, bhttp::empty_body> p;
  p.eager(false);
  p.skip(true);  // the header only: what follows is body bytes this test does not send
  boost::system::error_code ec;
  p.put(net::buffer(wire), ec);
  REQUIRE_MESSAGE(!ec, ec.message());
  REQUIRE(p.is_header_done());
  return p.release();
}

// A header read as the server and the proxy read it: a client's request, an upstream answer.
template <class Parser>
std::unique_ptr<Parser> read_head(const std::string& wire) {
  auto p = std::make_unique<Parser>();
  p->eager(false);
  boost::system::error_code ec;
  p->put(net::buffer(wire), ec);
  REQUIRE_MESSAGE(!ec, ec.message());
  REQUIRE(p->is_header_done());
  return p;
}

std::unique_ptr<http::answer_parser> read_answer_head(const std::string& wire) {
  return read_head<http::answer_parser>(wire);
}

std::string bytes(const wire_piece& w) {
  std::string out;
  for (const auto& b : w.buffers()) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}

}  // namespace

TEST_CASE("the_upstream_request_keeps_the_message_and_drops_the_hop_and_the_callers_credentials") {
  auto h = read_head<http::request_reader>(
      "POST /v1/proxy/app/things?x=1 HTTP/1.1\r\n"
      "Host: localhost\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: secret-to-this-hop\r\n"
      "Keep-Alive: timeout=5\r\n"
      "TE: trailers\r\n"
      "Authorization: Bearer callers-own\r\n"
      "X-DPT-Authorization: callers-dpt\r\n"
      "X-Api-Key: callers-key\r\n"
      "X-Token-Broker: 1\r\n"
      "Expect: 100-continue\r\n"
      "Prefer: wait=5\r\n"
      "Content-Type: text/plain\r\n"
      "Via: 1.0 edge\r\n"
      "Content-Length: 5\r\n\r\n");
  upstream_request u;
  u.target = "/api/things?x=1";
  u.host = "api.example:8443";
  u.inject_header = "X-Api-Key";
  u.inject_format = "key={token};v1";
  u.token = "injected";
  u.content_length = 5;
  std::string out = "left over from the last call";
  upstream_head(*h, u, out);

  auto up = parse_head<true>(out);
  CHECK(up.method_string() == "POST");
  CHECK(up.target() == "/api/things?x=1");
  CHECK(up.version() == 11);
  CHECK(up[bhttp::field::host] == "api.example:8443");
  CHECK(up["X-Api-Key"] == "key=injected;v1");
  CHECK(up.count("X-Api-Key") == 1);
  CHECK(up[bhttp::field::content_type] == "text/plain");
  CHECK(up[bhttp::field::content_length] == "5");
  CHECK(up[bhttp::field::prefer] == "wait=5");  // passed on unless the broker honours it
  CHECK(up.count(bhttp::field::via) == 2);       // the caller's, then ours
  CHECK(out.find("Via: 1.1 tokenbroker\r\n") != std::string::npos);
  for (auto gone : {"Connection", "X-Hop", "Keep-Alive", "TE", "Authorization",
                    "X-DPT-Authorization", "X-Token-Broker", "Expect", "Transfer-Encoding"})
    CHECK_MESSAGE(up.count(gone) == 0, gone);
  CHECK(up.keep_alive());

  SUBCASE("a streamed body of unknown length goes chunked, and Expect only when forwarded") {
    u.content_length.reset();
    u.chunked = true;
    u.expect_continue = true;
    u.drop_prefer = true;
    upstream_head(*h, u, out);
    auto chunked = parse_head<true>(out);
    CHECK(chunked.chunked());
    CHECK(chunked.count(bhttp::field::content_length) == 0);
    CHECK(chunked[bhttp::field::expect] == "100-continue");
    CHECK(chunked.count(bhttp::field::prefer) == 0);
  }
}

TEST_CASE("the_answer_keeps_status_and_fields_and_is_framed_for_the_caller") {
  auto head = read_answer_head(
      "HTTP/1.1 201 Made It\r\n"
      "Connection: X-Upstream-Hop\r\n"
      "X-Upstream-Hop: 1\r\n"
      "Transfer-Encoding: chunked\r\n"
      "Proxy-Authenticate: Basic\r\n"
      "Set-Cookie: a=1\r\n"
      "Set-Cookie: b=2\r\n"
      "Cache-Control: no-store\r\n\r\n");
  std::string out;
  downstream_head(*head, {.version = 11, .chunked = true, .keep_alive = true}, out);
  auto down = parse_head<false>(out);
  CHECK(down.result_int() == 201);
  CHECK(down.reason() == "Made It");
  CHECK(down.count(bhttp::field::set_cookie) == 2);  // repeated fields stay, in order
  CHECK(down[bhttp::field::cache_control] == "no-store");
  CHECK(down[bhttp::field::via] == "1.1 tokenbroker");
  CHECK(down.chunked());
  CHECK(down.keep_alive());
  CHECK(down.count("X-Upstream-Hop") == 0);
  CHECK(down.count(bhttp::field::proxy_authenticate) == 0);
  CHECK(down.count(bhttp::field::connection) == 0);

  SUBCASE("an HTTP/1.1 caller that must not reuse the connection is told to close") {
    downstream_head(*head, {.version = 11, .chunked = true, .keep_alive = false}, out);
    CHECK_FALSE(parse_head<false>(out).keep_alive());
  }
  SUBCASE("an HTTP/1.0 caller gets a 1.0 status line, keep-alive only when said") {
    downstream_head(*head, {.version = 10, .chunked = false, .keep_alive = true}, out);
    CHECK(out.starts_with("HTTP/1.0 201 Made It\r\n"));
    auto kept = parse_head<false>(out);
    CHECK(kept.keep_alive());
    CHECK_FALSE(kept.chunked());
    downstream_head(*head, {.version = 10, .chunked = false, .keep_alive = false}, out);
    CHECK_FALSE(parse_head<false>(out).keep_alive());
  }
  SUBCASE("an empty reason gets the standard phrase") {
    auto bare = read_answer_head("HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n");
    downstream_head(*bare, {}, out);
    CHECK(out.starts_with("HTTP/1.1 404 Not Found\r\n"));
    CHECK(parse_head<false>(out)[bhttp::field::content_length] == "0");
  }
}

TEST_CASE("a_wire_piece_frames_body_bytes_as_the_message_requires") {
  CHECK(bytes(wire_piece("HEAD\r\n\r\n", "hello", false, true)) == "HEAD\r\n\r\nhello");
  CHECK(bytes(wire_piece({}, "hello", true, false)) == "5\r\nhello\r\n");
  CHECK(bytes(wire_piece({}, std::string(300, 'x'), true, true)) ==
        "12c\r\n" + std::string(300, 'x') + "\r\n0\r\n\r\n");
  CHECK(bytes(wire_piece("H\r\n\r\n", {}, true, true)) == "H\r\n\r\n0\r\n\r\n");
  CHECK(bytes(wire_piece("H\r\n\r\n", {}, true, false)) == "H\r\n\r\n");  // no empty chunk
  CHECK(bytes(wire_piece({}, {}, false, true)).empty());

  // What a chunked piece sequence carries, a parser reads back whole.
  std::string wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     bytes(wire_piece({}, "abc", true, false)) +
                     bytes(wire_piece({}, std::string(70000, 'z'), true, true));
  bhttp::response_parser<bhttp::string_body> p;
  p.body_limit(1 << 20);
  boost::system::error_code ec;
  std::size_t used = 0;
  while (!p.is_done() && !ec)
    used += p.put(net::buffer(wire.data() + used, wire.size() - used), ec);
  REQUIRE_MESSAGE(!ec, ec.message());
  CHECK(p.get().body() == "abc" + std::string(70000, 'z'));
}

}  // namespace tokenbroker::app
