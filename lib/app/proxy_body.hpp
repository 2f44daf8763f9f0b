// Moving bodies through the proxy (app/proxy.cpp): the buffer a streamed body goes through,
// and the reads of the client's request body and the upstream's answer body.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/error.hpp"
#include "http/flat_parser.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/write.hpp"

namespace tokenbroker::app {

/// The buffer a body streams through, piece by piece: allocated when a body needs it, no larger
/// than that body (when its length is declared) and at most `max`. A 64 KiB piece for every
/// call, with the connections' read buffers sized alike, held 12 MiB of heap at 64 concurrent
/// small calls, and the churn of blocks that size fragmented the heap (bench/analysis.md).
class piece_buffer {
 public:
  explicit piece_buffer(std::size_t max) : max_(max) {}
  /// `body_size`: the declared length of the body about to stream, if any.
  std::span<char> get(const boost::optional<std::uint64_t>& body_size) {
    std::size_t want = max_;
    if (body_size) want = static_cast<std::size_t>(std::clamp<std::uint64_t>(*body_size, 1, max_));
    if (want > size_) {
      data_ = std::make_unique_for_overwrite<char[]>(want);
      size_ = want;
    }
    return {data_.get(), size_};
  }

 private:
  std::size_t max_;
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
};

inline constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";

/// Tells the client to send its body (Expect: 100-continue).
template <class Stream>
awaitable<boost::system::error_code> write_continue(Stream& s, std::chrono::milliseconds timeout) {
  std::array<net::const_buffer, 1> wire{net::buffer(k_continue.data(), k_continue.size())};
  co_return co_await http::write_all(s, wire, timeout);
}

/// A body read's outcome: the bytes that went into a buffer of `size` with `left` still free,
/// or the error (need_buffer only says the buffer is full). `what` names the read in the error.
result<std::size_t> body_read(const boost::system::error_code& ec, std::size_t size,
                              std::size_t left, std::string_view what);

/// Body reads in two halves, as http::write_now and write_rest: take_client and take_upstream
/// are not coroutines and take what has already arrived (a small body comes with its header);
/// false when the stream must be read, by read_client or read_upstream. Either way at most
/// `size` bytes go into `data`, and `n` is what went (or the error).
bool take_client(http::streamed_request& sr, char* data, std::size_t size,
                 result<std::size_t>& n);
bool take_upstream(http::connection& c, http::answer_parser& p, char* data, std::size_t size,
                   result<std::size_t>& n);

/// Reads up to `size` request-body bytes from the client into `data`: what has arrived, not
/// waiting for `size` (a stream that trickles is relayed as it comes; a stall loses nothing
/// already read).
template <class Stream>
awaitable<result<std::size_t>> read_client(Stream& s, http::streamed_request& sr, char* data,
                                           std::size_t size, std::chrono::milliseconds timeout) {
  result<std::size_t> n{std::size_t{0}};
  if (take_client(sr, data, size, n)) co_return n;
  s.expires_after(timeout);
  auto [ec, got] = co_await http::bhttp::async_read_some(s, sr.buffer, sr.parser, use_tuple);
  co_return body_read(ec, size, sr.parser.body().size, "reading the request body");
}

/// Reads up to `size` response-body bytes from the upstream into `data`, as read_client does.
awaitable<result<std::size_t>> read_upstream(http::connection& c, http::answer_parser& p,
                                             char* data, std::size_t size,
                                             std::chrono::milliseconds timeout);

}  // namespace tokenbroker::app
