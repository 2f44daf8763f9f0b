// Stream-level steps of a session, for plain TCP and TLS alike: deadlines, writes, the streamed
// upload and download, the misbehaving writes of faults, and closing.
#pragma once

#include <array>
#include <boost/optional.hpp>
#include <optional>
#include <vector>

#include "context.hpp"

namespace tokenbroker::sim {

namespace bhttp = http::bhttp;
using http::beast::flat_buffer;
using http::beast::get_lowest_layer;

template <class Stream>
void set_deadline(Stream& s, std::chrono::milliseconds d) {
  get_lowest_layer(s).expires_after(d);
}

/// Writes a whole response by the io deadline; false on failure.
template <class Stream, class Body>
awaitable<bool> do_write(context& ctx, Stream& s, bhttp::response<Body>& res) {
  set_deadline(s, ctx.opts.io_timeout);
  auto [ec, n] = co_await bhttp::async_write(s, res, use_tuple);
  co_return !ec;
}

/// Answers "Expect: 100-continue" before the body is read (curl sends it for large bodies).
template <class Stream>
awaitable<void> do_continue(context& ctx, Stream& s, const bhttp::request<bhttp::empty_body>& h) {
  auto it = h.find(http::field::expect);
  if (it == h.end() || !http::beast::iequals(it->value(), "100-continue")) co_return;
  bhttp::response<bhttp::empty_body> res{http::status::continue_, h.version()};
  co_await do_write(ctx, s, res);
}

/// Reads the rest of the request of `hp` in pieces, handing each to `sink`; up to `cap` bytes.
template <class Stream, class Sink>
awaitable<boost::system::error_code> read_body_streamed(
    context& ctx, Stream& s, flat_buffer& buf, bhttp::request_parser<bhttp::empty_body>& hp,
    boost::optional<std::uint64_t> cap, Sink&& sink) {
  bhttp::request_parser<bhttp::buffer_body> p{std::move(hp)};
  p.body_limit(cap);
  std::vector<char> chunk(64 * 1024);
  while (!p.is_done()) {
    p.get().body().data = chunk.data();
    p.get().body().size = chunk.size();
    set_deadline(s, ctx.opts.io_timeout);
    auto [ec, n] = co_await bhttp::async_read(s, buf, p, use_tuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) co_return ec;
    sink(chunk.data(), chunk.size() - p.get().body().size);
  }
  co_return boost::system::error_code{};
}

/// Streams `total` bytes of the pattern byte[i] = i % 251, with chunked encoding or after a
/// Content-Length (`with_length`). With `slow` (fault slow_body), the first piece goes at
/// once, then one byte per `slow` interval.
template <class Stream>
awaitable<bool> do_download(context& ctx, Stream& s, response& head, std::uint64_t total,
                            bool with_length,
                            std::optional<std::chrono::milliseconds> slow = std::nullopt) {
  constexpr std::size_t piece = 64 * 1024;
  static const std::vector<char> pattern = [] {
    std::vector<char> v(piece + 251);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>(i % 251);
    return v;
  }();
  bhttp::response<bhttp::empty_body> h{std::move(head.base())};
  if (with_length)
    h.content_length(total);
  else
    h.chunked(true);
  bhttp::response_serializer<bhttp::empty_body> sr{h};
  set_deadline(s, ctx.opts.io_timeout);
  auto [hec, hn] = co_await bhttp::async_write_header(s, sr, use_tuple);
  if (hec) co_return false;
  net::steady_timer timer(co_await net::this_coro::executor);
  for (std::uint64_t sent = 0; sent < total;) {
    auto len = static_cast<std::size_t>(std::min<std::uint64_t>(piece, total - sent));
    if (slow && sent > 0) {
      len = 1;
      timer.expires_after(*slow);
      co_await timer.async_wait(use_tuple);
    }
    auto chunk = net::buffer(pattern.data() + sent % 251, len);
    set_deadline(s, ctx.opts.io_timeout);
    boost::system::error_code ec;
    if (with_length)
      std::tie(ec, std::ignore) = co_await net::async_write(s, chunk, use_tuple);
    else
      std::tie(ec, std::ignore) = co_await net::async_write(s, bhttp::make_chunk(chunk), use_tuple);
    if (ec) co_return false;
    sent += len;
  }
  if (with_length) co_return true;
  set_deadline(s, ctx.opts.io_timeout);
  auto [lec, ln] = co_await net::async_write(s, bhttp::make_chunk_last(), use_tuple);
  co_return !lec;
}

/// Fault slow_body: the header at once, then the body one byte per `interval`.
template <class Stream>
awaitable<bool> do_slow_write(context& ctx, Stream& s, response& res,
                              std::chrono::milliseconds interval) {
  res.prepare_payload();
  bhttp::response_serializer<bhttp::string_body> sr{res};
  set_deadline(s, ctx.opts.io_timeout);
  auto [hec, hn] = co_await bhttp::async_write_header(s, sr, use_tuple);
  if (hec) co_return false;
  net::steady_timer timer(co_await net::this_coro::executor);
  for (char c : res.body()) {
    timer.expires_after(interval);
    co_await timer.async_wait(use_tuple);
    set_deadline(s, ctx.opts.io_timeout);
    auto [ec, n] = co_await net::async_write(s, net::buffer(&c, 1), use_tuple);
    if (ec) co_return false;
  }
  co_return true;
}

/// Fault hang: never answer; hold the socket until the client closes (or `limit` passes).
template <class Stream>
awaitable<void> do_hang(Stream& s, std::chrono::milliseconds limit) {
  auto& tcp = get_lowest_layer(s);
  tcp.expires_after(limit);
  std::array<char, 1024> sink;
  for (;;) {
    auto [ec, n] = co_await tcp.async_read_some(net::buffer(sink), use_tuple);
    if (ec) break;
  }
}

/// Fault reset: an abortive close (RST) through SO_LINGER 0.
template <class Stream>
void do_reset(Stream& s) {
  auto& sock = get_lowest_layer(s).socket();
  boost::system::error_code ec;
  sock.set_option(net::socket_base::linger(true, 0), ec);
  sock.close(ec);
}

inline awaitable<void> do_close(http::beast::tcp_stream& s) {
  boost::system::error_code ec;
  s.socket().shutdown(http::tcp::socket::shutdown_send, ec);
  co_return;
}

inline awaitable<void> do_close(http::ssl::stream<http::beast::tcp_stream>& s) {
  if (!s.next_layer().socket().is_open()) co_return;
  s.next_layer().expires_after(std::chrono::seconds{1});
  co_await s.async_shutdown(use_tuple);
  s.next_layer().close();
}

}  // namespace tokenbroker::sim
