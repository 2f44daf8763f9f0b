// Relaying a long body from one plain socket to another through a pipe with splice(2): the
// kernel moves the received pages on instead of copying them up into the broker and down again.
// Measured on this project's machines (bench/analysis.md, streams round 2): a proxied 1 GiB
// download took 1.0–1.4 s of the broker's CPU copied through a 64 KiB buffer, most of it the
// two copies and waking the reader for every piece; through a 1 MiB pipe 0.4–0.6 s, and it
// went half as fast again.
// Linux only, as the daemon is; TLS streams are still copied (their bytes must be decrypted).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "http/beast.hpp"
#include "http/deadline.hpp"

namespace tokenbroker::http {

/// A non-blocking pipe for splice(2), closed with the object.
class splice_pipe {
 public:
  /// A pipe given room for `want` bytes where the system allows it (fs.pipe-max-size, and
  /// fs.pipe-user-pages-soft across the user's pipes); usable() says whether it got at least
  /// `least`, below which the caller had better copy.
  splice_pipe(std::size_t want, std::size_t least) noexcept;
  ~splice_pipe();
  splice_pipe(const splice_pipe&) = delete;
  splice_pipe& operator=(const splice_pipe&) = delete;

  bool usable() const noexcept { return read_ >= 0 && capacity_ >= least_; }
  std::size_t capacity() const noexcept { return capacity_; }

  /// Moves up to `n` bytes from the socket `fd` into the pipe, or out of the pipe into `fd`:
  /// the bytes moved, 0 when `fd` has ended (fill), or -1 with errno (EAGAIN: not ready).
  long fill(int fd, std::size_t n) noexcept;
  long drain(int fd, std::size_t n) noexcept;

 private:
  int read_ = -1, write_ = -1;
  std::size_t capacity_ = 0, least_ = 0;
};

enum class splice_failure {
  none,
  source_ended,    // the source closed before the last byte
  source_failed,   // reading it failed (reset)
  source_timeout,  // nothing came within the read timeout
  sink_failed,     // the receiver went away
  sink_timeout,    // the receiver took nothing within the write timeout
};

struct splice_outcome {
  std::uint64_t moved = 0;  // bytes that reached `to`
  splice_failure failure = splice_failure::none;
  boost::system::error_code error;  // what failed, when something did
};

/// Moves exactly `n` bytes from `from` to `to` (Asio sockets, both plain and non-blocking)
/// through `pipe`. Each wait for `from` has `read_timeout`, each wait for `to` `write_timeout`;
/// a wait that passes its deadline cancels, and the outcome says which side failed.
template <class From, class To>
awaitable<splice_outcome> splice_exact(From& from, To& to, splice_pipe& pipe, std::uint64_t n,
                                       std::chrono::milliseconds read_timeout,
                                       std::chrono::milliseconds write_timeout) {
  splice_outcome out;
  bool expired = false;
  read_deadline deadline(from.get_executor(), [&] {
    expired = true;
    boost::system::error_code ignored;
    from.cancel(ignored);
    to.cancel(ignored);
  });
  std::uint64_t received = 0;  // into the pipe; out.moved of them are out of it again
  while (out.moved < n) {
    std::size_t in_pipe = static_cast<std::size_t>(received - out.moved);
    if (received < n && in_pipe < pipe.capacity()) {
      auto room = std::min<std::uint64_t>(n - received, pipe.capacity() - in_pipe);
      long k = pipe.fill(from.native_handle(), static_cast<std::size_t>(room));
      if (k > 0) {
        received += static_cast<std::uint64_t>(k);
        continue;  // more may be there: fill the pipe before draining it
      }
      if (k == 0) {
        out.failure = splice_failure::source_ended;
        out.error = net::error::eof;
        co_return out;
      }
      if (errno != EAGAIN) {
        out.failure = splice_failure::source_failed;
        out.error = {errno, boost::system::system_category()};
        co_return out;
      }
      if (in_pipe == 0) {  // nothing to pass on: wait for the source
        deadline.arm(read_timeout);
        auto [ec] = co_await from.async_wait(net::socket_base::wait_read, use_tuple);
        deadline.disarm();
        if (expired || ec) {
          out.failure = expired ? splice_failure::source_timeout : splice_failure::source_failed;
          out.error = expired ? beast::error::timeout : ec;
          co_return out;
        }
        continue;
      }
    }
    long k = pipe.drain(to.native_handle(), in_pipe);
    if (k > 0) {
      out.moved += static_cast<std::uint64_t>(k);
      continue;
    }
    if (k == 0 || (k < 0 && errno != EAGAIN)) {  // 0: the pipe held nothing, which cannot be
      out.failure = splice_failure::sink_failed;
      out.error = {k == 0 ? EIO : errno, boost::system::system_category()};
      co_return out;
    }
    deadline.arm(write_timeout);
    auto [ec] = co_await to.async_wait(net::socket_base::wait_write, use_tuple);
    deadline.disarm();
    if (expired || ec) {
      out.failure = expired ? splice_failure::sink_timeout : splice_failure::sink_failed;
      out.error = expired ? beast::error::timeout : ec;
      co_return out;
    }
  }
  co_return out;
}

}  // namespace tokenbroker::http
