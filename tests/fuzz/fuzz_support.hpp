// Helpers shared by the fuzz targets: turning raw bytes into HTTP messages, and a check that
// aborts (so libFuzzer records the input) when a property of the code under test does not hold.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace tokenbroker::fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Aborts with `what` when `ok` is false: a broken invariant is a finding like a crash.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

/// Parses `bytes` as one HTTP/1.1 message of type Message with the given limits (as the broker's
/// client and server do); false when Beast refuses it.
template <bool IsRequest>
bool parse_message(std::string_view bytes,
                   boost::beast::http::message<IsRequest, boost::beast::http::string_body>& out,
                   std::size_t header_limit = 16 * 1024, std::size_t body_limit = 64 * 1024) {
  boost::beast::http::parser<IsRequest, boost::beast::http::string_body> p;
  p.header_limit(static_cast<std::uint32_t>(header_limit));
  p.body_limit(body_limit);
  p.eager(true);
  boost::system::error_code ec;
  while (!bytes.empty() && !p.is_done()) {
    auto used = p.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec == boost::beast::http::error::need_more) ec = {};
    if (ec || used == 0) break;
    bytes.remove_prefix(used);
  }
  // put_eof() only after some bytes (Beast asserts on it otherwise): an empty input is no message.
  if (!ec && !p.is_done() && p.got_some()) p.put_eof(ec);
  if (ec || !p.is_done()) return false;
  out = p.release();
  return true;
}

}  // namespace tokenbroker::fuzz
