#include "http/flat_parser.hpp"

#include <doctest/doctest.h>

#include <string>

#include "support/message_reading.hpp"

namespace tokenbroker::http {

namespace {

using testing::beast_answer_parser;
using testing::beast_request_parser;
using testing::message_reading;
using testing::read_message;

message_reading ours(std::string_view wire, std::size_t piece, std::size_t room,
                     bool head = false) {
  answer_parser p;
  return read_message(p, wire, piece, room, head);
}

message_reading beasts(std::string_view wire, std::size_t piece, std::size_t room,
                       bool head = false) {
  beast_answer_parser p;
  return read_message(p, wire, piece, room, head);
}

// Answers of every framing, and some that must be refused.
const char* const answers[] = {
    "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n"
    "Connection: keep-alive\r\n\r\nhello world",
    "HTTP/1.1 201 Made It\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: t\r\n\r\n",
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close",
    "HTTP/1.1 204 No Content\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
    "HTTP/1.1 404 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:   padded   \r\nContent-Length: 1\r\n\r\nx",
    "HTTP/1.1 200 OK\r\nConnection: X-A\r\nX-B: 1\r\nconnection: X-B\r\nContent-Length: 0\r\n\r\n",
    // Refused: conflicting lengths, a bad length, a broken chunk, a bad status line.
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
    "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nx",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
    // Cut short: in the header, and in a declared body.
    "HTTP/1.1 200 OK\r\nContent-Le",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
};

// Every way the bytes of `wire` may arrive: in pieces of 1, 3 or 17 bytes or whole, into body
// buffers of 1, 4 or 4,096 bytes.
template <class Fn>
void each_arrival(std::string_view wire, Fn fn) {
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{17}, wire.size()}) {
    for (std::size_t room : {std::size_t{1}, std::size_t{4}, std::size_t{4096}}) {
      CAPTURE(wire);
      CAPTURE(piece);
      CAPTURE(room);
      fn(piece, room);
    }
  }
}

// Part by part, so that a failure says which; then the fields as HTTP means them (see
// message_reading).
void check_same(const message_reading& got, const message_reading& expected) {
  CHECK(got.ec == expected.ec);
  CHECK(got.header_done == expected.header_done);
  CHECK(got.done == expected.done);
  CHECK(got.code == expected.code);
  CHECK(got.reason == expected.reason);
  CHECK(got.method == expected.method);
  CHECK(got.method_string == expected.method_string);
  CHECK(got.target == expected.target);
  CHECK(got.version == expected.version);
  CHECK(got.content_length == expected.content_length);
  CHECK(got.chunked == expected.chunked);
  CHECK(got.keep_alive == expected.keep_alive);
  CHECK(got.need_eof == expected.need_eof);
  CHECK(got.body == expected.body);
  CHECK(got == expected);
}

}  // namespace

TEST_CASE("the_answer_parser_reads_what_beasts_parser_reads_in_any_pieces") {
  for (std::string_view wire : answers) {
    each_arrival(wire, [&](std::size_t piece, std::size_t room) {
      for (bool head : {false, true}) {
        CAPTURE(head);
        check_same(ours(wire, piece, room, head), beasts(wire, piece, room, head));
      }
    });
  }
}

TEST_CASE("the_answer_parser_keeps_the_status_and_the_fields_in_order") {
  auto r = ours(answers[1], 5, 3);
  CHECK(!r.ec);
  CHECK(r.done);
  CHECK(r.code == 201);
  CHECK(r.reason == "Made It");
  CHECK(r.version == 11);
  REQUIRE(r.fields.size() == 3);  // the trailer's field joins them, as in Beast's header
  CHECK(std::get<0>(r.fields[0]) == field::transfer_encoding);
  CHECK(std::get<1>(r.fields[1]) == "X-A");
  CHECK(std::get<2>(r.fields[1]) == "1");
  CHECK(std::get<1>(r.fields[2]) == "Trailer-Field");
  CHECK(r.chunked);
  CHECK(r.body == "hello world");  // chunk framing and extensions gone, trailer not in the body

  // The order received, a repeated name included (Beast's header would group the two
  // Connection fields).
  auto interleaved = ours(answers[8], 100, 100);
  REQUIRE(interleaved.fields.size() == 4);
  CHECK(std::get<1>(interleaved.fields[1]) == "X-B");
  CHECK(std::get<1>(interleaved.fields[2]) == "connection");

  auto refused = ours(answers[9], 100, 100);
  CHECK(refused.ec == bhttp::error::multiple_content_length);
  auto cut = ours(answers[15], 100, 100);
  CHECK(cut.ec == bhttp::error::partial_message);
  CHECK(cut.body == "short");
}

TEST_CASE("the_answer_parsers_body_buffer_stops_it_when_full") {
  answer_parser p;
  std::string_view wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  boost::system::error_code ec;
  auto used = p.put(net::buffer(wire.data(), wire.size()), ec);
  CHECK(!ec);
  REQUIRE(p.is_header_done());
  wire.remove_prefix(used);
  SUBCASE("no buffer: nothing taken") {
    p.put(net::buffer(wire.data(), wire.size()), ec);
    CHECK(ec == bhttp::error::need_buffer);
  }
  SUBCASE("a buffer of 3: three bytes, then need_buffer") {
    char room[3];
    p.body().data = room;
    p.body().size = sizeof room;
    used = p.put(net::buffer(wire.data(), wire.size()), ec);
    CHECK(ec == bhttp::error::need_buffer);
    CHECK(used == 3);
    CHECK(p.body().size == 0);
    CHECK(std::string_view(room, 3) == "hel");
  }
}

namespace {

// Requests as the local server reads them: the proxy's and the API's, and some to refuse.
const char* const requests[] = {
    "GET /v1/proxy/origin/small HTTP/1.1\r\nHost: localhost\r\nUser-Agent: h2load\r\n\r\n",
    "POST /v1/proxy/app/things?x=1 HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
    "Content-Length: 11\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n\r\nhello world",
    "PUT /v1/proxy/app/up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
    "Expect: 100-continue\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: t\r\n\r\n",
    "GET /v1/token/privicore HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "BREW /v1/proxy/app/pot HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n",
    "DELETE /x HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-A: 1\r\nx-a: 2\r\nConnection: close\r\n\r\n",
    // Refused: conflicting lengths, length and chunked, a bad method, a bad name; cut short.
    "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
    "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "G(T /x HTTP/1.1\r\n\r\n",
    "GET /x HTTP/1.1\r\nBad Name: x\r\n\r\n",
    "GET /x HTTP/1.1\r\nHo",
    "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
};

}  // namespace

TEST_CASE("the_request_reader_reads_what_beasts_parser_reads_in_any_pieces") {
  for (std::string_view wire : requests) {
    each_arrival(wire, [&](std::size_t piece, std::size_t room) {
      beast_request_parser theirs;
      request_reader mine;
      auto expected = read_message(theirs, wire, piece, room);
      check_same(read_message(mine, wire, piece, room), expected);
    });
  }
}

TEST_CASE("the_request_reader_keeps_the_line_and_the_fields_and_finds_a_field") {
  request_reader r;
  std::string_view wire = requests[4];
  boost::system::error_code ec;
  r.put(net::buffer(wire.data(), wire.size()), ec);
  CHECK(!ec);
  REQUIRE(r.is_done());
  CHECK(r.method() == verb::unknown);  // an extension method, by its name
  CHECK(r.method_string() == "BREW");
  CHECK(r.target() == "/v1/proxy/app/pot");
  CHECK(r.version() == 11);
  CHECK(r[field::host] == "h");
  CHECK(r[field::content_type].empty());
  CHECK(r.keep_alive());
  REQUIRE(r.field_count() == 2);
  CHECK((*std::next(r.begin())).name_string() == "X-Folded");
}

TEST_CASE("the_request_reader_appends_a_whole_body_to_a_string") {
  request_reader r;
  std::string_view wire = requests[2];  // chunked, with a trailer
  boost::system::error_code ec;
  auto used = r.put(net::buffer(wire.data(), wire.size()), ec);
  REQUIRE(!ec);
  REQUIRE(r.is_header_done());
  wire.remove_prefix(used);
  std::string body;
  r.body_to(&body);
  while (!ec && !wire.empty() && !r.is_done()) {  // a piece of the chunked body per put
    used = r.put(net::buffer(wire.data(), wire.size()), ec);
    wire.remove_prefix(used);
  }
  CHECK(!ec);
  CHECK(r.is_done());
  CHECK(body == "hello world");
  CHECK(r.field_count() == 4);  // the trailer's field joins the header's three
}

}  // namespace tokenbroker::http
