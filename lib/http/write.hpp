// Writing a whole message on a non-blocking socket: at once when the socket takes it, else the
// rest under a deadline.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "http/beast.hpp"

namespace tokenbroker::http {

/// Writes all of `wire` on `stream`, whose socket must be in non-blocking mode: first without
/// waiting (a small answer to a client that reads leaves in this one system call, with no
/// composed operation and no timer), then what is left with async_write under `timeout`.
/// Beast's serializer walks a buffers_cat_view of every field through several composed
/// operations, and basic_stream arms its timer around each of them: a sixth of the token path's
/// CPU (bench/analysis.md) before the server and the proxy wrote this way.
template <class Stream, class Buffers>
awaitable<boost::system::error_code> write_all(Stream& stream, const Buffers& wire,
                                               std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  std::size_t n = stream.socket().write_some(wire, ec);
  if (ec && ec != net::error::would_block && ec != net::error::try_again) co_return ec;
  if (n == net::buffer_size(wire)) co_return boost::system::error_code{};
  beast::buffers_suffix<Buffers> rest(wire);
  rest.consume(n);
  stream.expires_after(timeout);
  auto [wec, wn] = co_await net::async_write(stream, rest, use_tuple);
  co_return wec;
}

/// Appends one header field, `name: value` and CRLF.
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

/// Appends the status line for `version` (10 or 11), `code` and `reason` (the standard phrase
/// when empty), CRLF included.
inline void append_status_line(std::string& out, unsigned version, unsigned code,
                               std::string_view reason) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += static_cast<char>('0' + code / 100 % 10);
  out += static_cast<char>('0' + code / 10 % 10);
  out += static_cast<char>('0' + code % 10);
  out += ' ';
  out += reason.empty() ? std::string_view(bhttp::obsolete_reason(static_cast<status>(code)))
                        : reason;
  out += "\r\n";
}

}  // namespace tokenbroker::http
