// Outbound HTTP/1.1 over TCP or TLS, with deadlines, verified TLS and a keep-alive pool.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "http/beast.hpp"
#include "http/deadline.hpp"
#include "http/read.hpp"
#include "http/url.hpp"
#include "http/write.hpp"

namespace tokenbroker::http {

struct client_options {
  std::string ca_file;     // extra trusted CAs (PEM) on top of the system store; empty for none
  std::string cert_file;   // client certificate chain (PEM) offered to servers; empty for none
  std::string key_file;    // its private key (PEM); required with cert_file
  bool verify_tls = true;  // false is honoured for loopback URLs only
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{5}};
  std::size_t max_response_body = 8 * 1024 * 1024;
  // Idle keep-alive connections kept per origin. Below the proxy's concurrency, every release
  // past it closes a connection the next call must open again (bench: 32 concurrent calls
  // spent a third of their CPU reconnecting at 16). nginx's `keepalive` is commonly 32-64.
  std::size_t max_idle_per_origin = 64;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds{15}};
};

/// One open connection to an origin, plain or TLS. Owned by whoever acquired it.
class connection {
 public:
  connection(net::any_io_executor ex, ssl::context& ctx, bool tls, std::string origin);

  bool tls() const noexcept { return tls_; }
  const std::string& origin() const noexcept { return origin_; }
  beast::tcp_stream& tcp() noexcept { return stream_.next_layer(); }
  ssl::stream<beast::tcp_stream>& tls_stream() noexcept { return stream_; }
  /// True when this connection was used before (a stale keep-alive is possible).
  bool reused() const noexcept { return reused_; }

  // Each operation picks the TLS or plain stream with an if/else: g++ 12 miscompiles co_await
  // inside a conditional expression (the coroutine is silently destroyed).

  /// Writes a serializer-compatible message with the stream's current deadline.
  template <class Message>
  awaitable<boost::system::error_code> write(Message& msg) {
    if (tls_) {
      auto [ec, n] = co_await bhttp::async_write(stream_, msg, use_tuple);
      co_return ec;
    }
    auto [ec, n] = co_await bhttp::async_write(stream_.next_layer(), msg, use_tuple);
    co_return ec;
  }
  /// Writes all of `buffers` (http/write.hpp: a plain connection first tries without waiting),
  /// the rest within `timeout`. Not a coroutine itself: it hands back the one that writes, so
  /// a write costs one coroutine frame. `buffers` must outlive the awaiting.
  template <class Buffers>
  awaitable<boost::system::error_code> write_all(const Buffers& buffers,
                                                 std::chrono::milliseconds timeout) {
    if (tls_) return write_tls(buffers, timeout);
    return http::write_all(tcp(), buffers, timeout);
  }
  /// write_all's two halves (http/write.hpp), for a caller that saves the coroutine frame
  /// when the socket takes everything at once. A TLS connection writes nothing now.
  template <class Buffers>
  bool write_now(const Buffers& buffers, std::size_t& written, boost::system::error_code& ec) {
    written = 0;
    if (tls_) return false;
    return http::write_now(tcp(), buffers, written, ec);
  }
  template <class Buffers>
  awaitable<boost::system::error_code> write_rest(const Buffers& buffers, std::size_t written,
                                                  std::chrono::milliseconds timeout) {
    if (tls_) return write_tls(buffers, timeout);
    return http::write_rest(tcp(), buffers, written, timeout);
  }
  /// Reads a whole message into a parser with the stream's current deadline.
  template <class Parser>
  awaitable<boost::system::error_code> read(Parser& parser) {
    if (tls_) {
      auto [ec, n] = co_await bhttp::async_read(stream_, buffer_, parser, use_tuple);
      co_return ec;
    }
    auto [ec, n] = co_await bhttp::async_read(stream_.next_layer(), buffer_, parser, use_tuple);
    co_return ec;
  }
  /// Reads a message's header into a parser by `deadline`, with the errors Beast's
  /// async_read_header gives (end_of_stream, partial_message, beast::error::timeout...). A
  /// plain connection parses the bytes it holds and reads its socket directly under one
  /// read_deadline per connection: Beast's composed read on a basic_stream armed and
  /// cancelled a timer and ran three layers of composed operations for every answer
  /// (bench/analysis.md, proxy round 7). A deadline that passes closes the connection.
  template <class Parser>
  awaitable<boost::system::error_code> read_header(Parser& parser,
                                                   steady_clock::time_point deadline) {
    if (tls_) {
      expires_at(deadline);
      auto [ec, n] = co_await bhttp::async_read_header(stream_, buffer_, parser, use_tuple);
      co_return ec;
    }
    boost::system::error_code ec;
    while (!put_buffered(buffer_, parser, ec)) {  // the header's end is not buffered yet
      arm_read_deadline(deadline);
      auto [rec, n] = co_await tcp().socket().async_read_some(
          buffer_.prepare(beast::read_size(buffer_, 64 * 1024)), use_tuple);
      read_deadline_->disarm();
      if (read_expired_) co_return beast::error::timeout;
      if (rec == net::error::eof) {
        if (!parser.got_some()) co_return bhttp::error::end_of_stream;
        parser.put_eof(ec);
        co_return ec ? ec : bhttp::error::partial_message;
      }
      if (rec) co_return rec;
      buffer_.commit(n);
    }
    co_return ec;
  }
  /// Puts into `parser` the bytes this connection has already read: read_some's first step,
  /// not a coroutine (http/read.hpp, put_buffered).
  template <class Parser>
  bool take_buffered(Parser& parser, boost::system::error_code& ec) {
    return put_buffered(buffer_, parser, ec);
  }
  /// Bytes this connection has read and no parser has taken yet.
  std::size_t buffered() const noexcept { return buffer_.size(); }
  /// Reads some body bytes into a buffer_body parser: from bytes already read when they are
  /// enough (a small answer's body comes with its header), else from the stream.
  template <class Parser>
  awaitable<boost::system::error_code> read_some(Parser& parser) {
    boost::system::error_code buffered;
    if (put_buffered(buffer_, parser, buffered)) co_return buffered;
    if (tls_) {
      auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, parser, use_tuple);
      co_return ec;
    }
    auto [ec, n] = co_await bhttp::async_read_some(stream_.next_layer(), buffer_, parser, use_tuple);
    co_return ec;
  }
  void expires_at(steady_clock::time_point t) { tcp().expires_at(t); }
  /// Room for `n` bytes per read while a large body streams through (a new buffer reads 512
  /// bytes at a time); shrink_read_buffer() gives it back before the connection idles.
  void reserve_read_buffer(std::size_t n) { buffer_.reserve(n); }
  void shrink_read_buffer() {
    if (buffer_.capacity() > small_read_buffer) buffer_.shrink_to_fit();
  }
  /// A read buffer this small is kept by an idle connection: freeing it only to take it again
  /// for the next exchange cost an allocation per call.
  static constexpr std::size_t small_read_buffer = 4096;
  /// Non-blocking check that the peer has not closed an idle connection.
  bool looks_alive();

 private:
  friend class client;

  void arm_read_deadline(steady_clock::time_point deadline) {
    if (!read_deadline_)
      read_deadline_.emplace(stream_.get_executor(), [this] {
        read_expired_ = true;
        boost::system::error_code ignored;
        tcp().socket().close(ignored);
      });
    read_expired_ = false;
    read_deadline_->arm_at(deadline);
  }

  template <class Buffers>
  awaitable<boost::system::error_code> write_tls(const Buffers& buffers,
                                                 std::chrono::milliseconds timeout) {
    tcp().expires_after(timeout);
    auto [ec, n] = co_await net::async_write(stream_, buffers, use_tuple);
    co_return ec;
  }

  ssl::stream<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  bool tls_;
  bool reused_ = false;
  std::string origin_;
  steady_clock::time_point idle_since_{};
  std::optional<read_deadline> read_deadline_;  // read_header's, made at its first wait
  bool read_expired_ = false;
};

using connection_ptr = std::unique_ptr<connection>;

/// Maps a failed I/O to an error: timeouts, TLS failures and the rest (transport).
error io_error(const boost::system::error_code& ec, std::string_view what);

class client {
 public:
  /// Throws std::runtime_error when `ca_file`, `cert_file` or `key_file` cannot be loaded.
  client(net::any_io_executor ex, client_options options);

  /// Sends `req` to the origin of `base` and reads the whole answer. Sets Host and Content-Length
  /// (target and method are the caller's). The whole exchange must finish within `timeout`.
  awaitable<result<response>> send(const url& base, request req,
                                   std::chrono::milliseconds timeout);

  /// A connection to `base`'s origin: an idle pooled one if alive, else a new one (TCP connect,
  /// then TLS with SNI and host-name verification), by `deadline`.
  awaitable<result<connection_ptr>> acquire(const url& base, steady_clock::time_point deadline);
  /// acquire()'s first step, without a coroutine: an idle pooled connection to `base`'s origin
  /// that is still alive, or nullptr. `check_alive` false skips the one system call that asks
  /// (looks_alive) for a caller that sends again on a fresh connection when the upstream turns
  /// out to have closed this one.
  connection_ptr take_idle(const url& base, bool check_alive = true);
  /// Returns a connection whose last exchange ended cleanly with keep-alive, for reuse.
  void release(connection_ptr conn);

  const client_options& options() const noexcept { return options_; }
  ssl::context& tls_context() noexcept { return *ctx_; }
  net::any_io_executor get_executor() const { return ex_; }

 private:
  net::any_io_executor ex_;
  client_options options_;
  // Shared by every client with the same CA and client-certificate files (tls_contexts()): a
  // context holds the parsed system CA bundle, about 850 KiB, and takes milliseconds to build.
  std::shared_ptr<ssl::context> ctx_;
  std::shared_ptr<ssl::context> insecure_ctx_;
  std::map<std::string, std::vector<connection_ptr>> idle_;
  std::string origin_scratch_;  // take_idle's key
};

/// Methods whose request may go out twice (RFC 9110 §9.2.2): the only ones sent again on a fresh
/// connection when a pooled one turns out closed after the request was written.
constexpr bool idempotent(verb m) noexcept {
  return m == verb::get || m == verb::head || m == verb::put || m == verb::delete_ ||
         m == verb::options;
}

/// How a reused keep-alive connection that the peer had already closed fails: at the write or
/// at the first read of the answer.
inline bool closed_by_peer(const boost::system::error_code& ec) noexcept {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

/// The verifying and the non-verifying TLS client context for these files, shared with every
/// other client that asks for the same ones while any of them lives (thread-safe). Throws
/// std::runtime_error when a file cannot be loaded.
std::pair<std::shared_ptr<ssl::context>, std::shared_ptr<ssl::context>> tls_contexts(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file);

/// Opens a TCP connection to `u`'s host and port by `deadline`; for TLS URLs, also runs the
/// handshake with SNI and host-name verification (skipped only when `verify` is false, which the
/// configuration allows for loopback URLs). Used by `client` and the WebSocket client.
awaitable<result<void>> connect_stream(ssl::stream<beast::tcp_stream>& stream, const url& u,
                                       steady_clock::time_point deadline, bool verify = true);

}  // namespace tokenbroker::http
