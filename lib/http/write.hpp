// Writing a whole message on a non-blocking socket: at once when the socket takes it, else the
// rest under a deadline.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "http/beast.hpp"

namespace tokenbroker::http {

/// The first half of write_all, not a coroutine: writes what `stream`'s socket (non-blocking)
/// takes of `wire` now. True when that settled the write: all of it went, or it failed (`ec`).
/// False when bytes are left (`written` went): await write_rest for them. A small answer to a
/// client that reads leaves in this one system call, with no coroutine frame, no composed
/// operation and no timer.
template <class Stream, class Buffers>
bool write_now(Stream& stream, const Buffers& wire, std::size_t& written,
               boost::system::error_code& ec) {
  written = stream.socket().write_some(wire, ec);
  if (ec == net::error::would_block || ec == net::error::try_again) {
    ec = {};
    written = 0;
    return false;
  }
  return ec || written == net::buffer_size(wire);
}

/// The second half: the rest of `wire` after its first `written` bytes, with async_write under
/// `timeout`.
template <class Stream, class Buffers>
awaitable<boost::system::error_code> write_rest(Stream& stream, const Buffers& wire,
                                                std::size_t written,
                                                std::chrono::milliseconds timeout) {
  beast::buffers_suffix<Buffers> rest(wire);
  rest.consume(written);
  stream.expires_after(timeout);
  auto [ec, n] = co_await net::async_write(stream, rest, use_tuple);
  co_return ec;
}

/// Writes all of `wire` on `stream`, whose socket must be in non-blocking mode: write_now, then
/// write_rest when needed. Beast's serializer walks a buffers_cat_view of every field through
/// several composed operations, and basic_stream arms its timer around each of them: a sixth of
/// the token path's CPU (bench/analysis.md) before the server and the proxy wrote this way.
/// Where a call is hot, its caller does the two halves itself and saves this coroutine's frame.
template <class Stream, class Buffers>
awaitable<boost::system::error_code> write_all(Stream& stream, const Buffers& wire,
                                               std::chrono::milliseconds timeout) {
  boost::system::error_code ec;
  std::size_t written = 0;
  if (write_now(stream, wire, written, ec)) co_return ec;
  // write_rest's body, not a call to it: a stream's pieces often fill the socket, and each
  // would then take a second coroutine frame.
  beast::buffers_suffix<Buffers> rest(wire);
  rest.consume(written);
  stream.expires_after(timeout);
  auto [wec, n] = co_await net::async_write(stream, rest, use_tuple);
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
