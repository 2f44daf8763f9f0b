// Reads bytes as an HTTP message (a client's request, an upstream's answer), in pieces as a
// socket gives them and into a small body buffer as the proxy does, and records everything the
// broker uses of it. Done with Beast's parser and with http::flat_parser, the two records must
// be equal (unit_http and the fuzz_flat_parser target).
#pragma once

#include <algorithm>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "http/flat_parser.hpp"

namespace tokenbroker::testing {

using beast_answer_parser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
using beast_request_parser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;

template <bool isRequest>
auto& body_of(boost::beast::http::parser<isRequest, boost::beast::http::buffer_body>& p) {
  return p.get().body();
}
template <bool isRequest>
const auto& header_of(
    const boost::beast::http::parser<isRequest, boost::beast::http::buffer_body>& p) {
  return p.get();
}
template <bool isRequest>
auto& body_of(http::flat_parser<isRequest>& p) {
  return p.body();
}
template <bool isRequest>
const auto& header_of(const http::flat_parser<isRequest>& p) {
  return p;
}

struct message_reading {
  boost::system::error_code ec;  // the error that ended the reading, if any
  bool header_done = false;
  bool done = false;
  int code = 0;        // an answer's status and reason
  std::string reason;  //
  boost::beast::http::verb method = boost::beast::http::verb::unknown;  // a request's line
  std::string method_string, target;                                    //
  unsigned version = 0;
  using field_list = std::vector<std::tuple<boost::beast::http::field, std::string, std::string>>;
  field_list fields;
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = false;
  bool need_eof = false;
  std::string body;

  /// The same message: equal in all, the fields as HTTP means them (RFC 9110 §5.3): the same
  /// fields, in the same order among those of one name. Beast's header groups a repeated name
  /// with its first occurrence; flat_parser keeps the order received.
  friend bool operator==(const message_reading& a, const message_reading& b) {
    auto tie = [](const message_reading& r) {
      return std::tie(r.ec, r.header_done, r.done, r.code, r.reason, r.method, r.method_string,
                      r.target, r.version, r.content_length, r.chunked, r.keep_alive,
                      r.need_eof, r.body);
    };
    return tie(a) == tie(b) && by_name(a.fields) == by_name(b.fields);
  }

 private:
  static field_list by_name(field_list fields) {
    std::stable_sort(fields.begin(), fields.end(), [](const auto& x, const auto& y) {
      return boost::beast::iless{}(std::get<1>(x), std::get<1>(y));
    });
    return fields;
  }
};

/// `parser`: a fresh Beast parser with a buffer_body, or a flat_parser, of either kind.
/// `piece`: at most this many new bytes per read (at least 1); `room`: the body buffer's size
/// (at least 1); `head`: an answer to a HEAD request (no body, whatever the header says).
template <class Parser>
message_reading read_message(Parser& parser, std::string_view input, std::size_t piece,
                             std::size_t room, bool head = false) {
  namespace bhttp = boost::beast::http;
  message_reading r;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  if (head) parser.skip(true);
  std::string pending;  // read and not yet consumed, as in a connection's buffer
  std::string room_bytes(room, '\0');
  // Every round consumes or reads at least one byte, or ends: the bound is only a backstop.
  for (std::size_t round = 0; round < 4 * (input.size() + 8) && !parser.is_done(); ++round) {
    auto& body = body_of(parser);
    body.data = room_bytes.data();
    body.size = room_bytes.size();
    boost::system::error_code ec;
    std::size_t used = pending.empty() ? 0 : parser.put(boost::asio::buffer(pending), ec);
    if (pending.empty()) ec = bhttp::error::need_more;
    pending.erase(0, used);
    r.body.append(room_bytes.data(), room_bytes.size() - body.size);
    if (ec == bhttp::error::need_buffer) continue;
    if (ec == bhttp::error::need_more) {
      if (input.empty()) {  // the peer closed
        if (parser.got_some()) parser.put_eof(ec);
        if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        if (ec) r.ec = ec;
        break;
      }
      auto n = std::min(piece, input.size());
      pending.append(input.substr(0, n));
      input.remove_prefix(n);
      continue;
    }
    if (ec) {
      r.ec = ec;
      break;
    }
  }
  r.header_done = parser.is_header_done();
  r.done = parser.is_done();
  if (r.header_done) {
    const auto& h = header_of(parser);
    if constexpr (Parser::is_request::value) {
      r.method = h.method();
      r.method_string = std::string(h.method_string());
      r.target = std::string(h.target());
    } else {
      r.code = h.result_int();
      r.reason = std::string(h.reason());
    }
    r.version = h.version();
    for (const auto& f : h)
      r.fields.emplace_back(f.name(), std::string(f.name_string()), std::string(f.value()));
    if (auto n = parser.content_length()) r.content_length = *n;
    r.chunked = parser.chunked();
    r.keep_alive = parser.keep_alive();
    r.need_eof = parser.need_eof();
  }
  return r;
}

}  // namespace tokenbroker::testing
