// The WebSocket acknowledgement channel (PROTOCOL.md §4): one socket to the proxy, joined with a
// profile token, delivering X-DPT-CAB-ID command results. Reconnects and re-joins by itself.
//
// Single-threaded: every member must be used on the io_context that runs run().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/asio.hpp"
#include "core/backoff.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "http/client.hpp"
#include "http/url.hpp"
#include "privicore/types.hpp"
#include "privicore/ws_message.hpp"

namespace tokenbroker::privicore {

struct ack_channel_options {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};  // TCP, TLS, WS handshake
  std::chrono::milliseconds join_timeout{std::chrono::seconds{10}};  // join ack (PRB: 10 s, §4.3)
  /// No frame for this long (pings are sent at half of it) → reconnect. The proxy drops idle
  /// connections (§4.6); pings keep ours busy and find dead ones.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds{60}};
  std::chrono::milliseconds reconnect_base{std::chrono::seconds{1}};
  std::chrono::milliseconds reconnect_cap{std::chrono::seconds{60}};
  std::size_t max_buffered_acks = 4096;  // oldest evicted first
  std::size_t max_message_bytes = 64 * 1024;
};

class ack_channel {
 public:
  /// Connects to `ws_url` (ws:// or wss://, TLS trusted and verified like `http`'s; verification
  /// is skipped only where `http` allows it: loopback with verify_tls off) and joins with
  /// `token`. Nothing happens until run() is started. `http` must outlive the channel.
  ack_channel(http::client& http, http::url ws_url, secret token, ack_channel_options options = {});
  ack_channel(const ack_channel&) = delete;
  ack_channel& operator=(const ack_channel&) = delete;

  /// Connect, join, read; on any failure reconnect with backoff and re-join. Returns after
  /// stop(). Start it once (spawn_logged), and keep the channel alive until it has returned.
  awaitable<void> run();
  /// Ends run() soon, wakes every waiter; the channel cannot be restarted.
  void stop();
  /// Re-joins with a new profile token on a fresh connection (§4.6: channels are bound to the
  /// token; re-joining with the new one is the safe assumption).
  void set_token(secret token);

  /// True while a join is acknowledged and the socket is up.
  bool joined() const noexcept { return joined_; }
  /// Counts successful joins; a change tells a waiter acks may have been lost (§4.6).
  std::uint64_t generation() const noexcept { return generation_; }
  /// The last connection or join failure, for logs ("" when none).
  const std::string& last_error() const noexcept { return last_error_; }

  /// Waits until the channel is joined: call it BEFORE sending a command whose ack you need
  /// (acks are pushed once and never replayed, §4.1). errc::timeout at `deadline`,
  /// errc::unavailable once stopped.
  awaitable<result<void>> ensure_joined(steady_clock::time_point deadline);

  /// The command's final outcome (2 = succeeded, 3 = rejected; status 1 is never reported).
  /// Returns at once when the ack is already buffered: an ack that beat the HTTP answer is not
  /// missed. nullopt at `deadline`, or earlier when the channel's state changes (lost, joined,
  /// stopped) so the caller can re-check joined() and generation().
  awaitable<std::optional<command_outcome>> wait(std::string id,
                                                 steady_clock::time_point deadline);

  /// A buffered final outcome for `id`, without waiting.
  std::optional<command_outcome> acknowledged(const std::string& id) const;

 private:
  struct waiter;
  awaitable<result<void>> do_connect();
  template <class Stream>
  awaitable<result<void>> do_session(Stream& ws, steady_clock::time_point deadline);
  void handle_message(ws_message& msg);
  void set_joined(bool joined);
  void wake(const std::string* id);

  net::any_io_executor ex_;
  http::ssl::context& tls_;
  bool verify_;
  http::url url_;
  secret token_;
  ack_channel_options options_;

  bool joined_ = false;
  bool stopped_ = false;
  bool restart_ = false;  // set_token: reconnect now, without backoff
  std::uint64_t generation_ = 0;
  std::string last_error_;
  std::function<void()> abort_;  // closes the current connection, if any
  net::steady_timer pause_;      // the backoff between attempts
  backoff backoff_;
  std::mt19937_64 rng_;

  std::unordered_map<std::string, command_outcome> acks_;
  std::deque<std::string> ack_order_;  // insertion order, for eviction
  std::vector<waiter*> waiters_;
};

}  // namespace tokenbroker::privicore
