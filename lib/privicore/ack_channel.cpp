#include "privicore/ack_channel.hpp"

#include <algorithm>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <variant>

#include "core/log.hpp"
#include "core/random.hpp"
#include "privicore/parse.hpp"
#include "privicore/ws_message.hpp"

namespace tokenbroker::privicore {
namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

std::string_view text_of(const beast::flat_buffer& b) {
  auto data = b.data();
  return {static_cast<const char*>(data.data()), data.size()};
}

/// Points `hook` (called by stop() and set_token()) at `close` for one connection's lifetime.
class abort_hook {
 public:
  abort_hook(std::function<void()>& hook, std::function<void()> close) : hook_(hook) {
    hook_ = std::move(close);
  }
  ~abort_hook() { hook_ = nullptr; }
  abort_hook(const abort_hook&) = delete;
  abort_hook& operator=(const abort_hook&) = delete;

 private:
  std::function<void()>& hook_;
};

}  // namespace

/// A suspended wait, registered for its lifetime: its timer is set to the deadline and
/// cancelled to wake it early.
struct ack_channel::waiter {
  waiter(ack_channel& channel, const std::string* for_id, steady_clock::time_point deadline)
      : list(channel.waiters_), id(for_id), timer(channel.ex_, deadline) {
    list.push_back(this);
  }
  ~waiter() { std::erase(list, this); }
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  std::vector<waiter*>& list;
  const std::string* id;  // nullptr: woken by state changes only
  net::steady_timer timer;
};

ack_channel::ack_channel(http::client& http, http::url ws_url, secret token,
                         ack_channel_options options)
    : ex_(http.get_executor()),
      tls_(http.tls_context()),
      verify_(http.options().verify_tls || !ws_url.loopback()),
      url_(std::move(ws_url)),
      token_(std::move(token)),
      options_(options),
      pause_(ex_),
      backoff_(options.reconnect_base, options.reconnect_cap),
      rng_(std::random_device{}()) {}

awaitable<void> ack_channel::run() {
  while (!stopped_) {
    auto session = co_await do_connect();
    set_joined(false);
    if (stopped_) break;
    if (!session) last_error_ = session.error().describe();
    if (restart_) continue;  // set_token: join with the new token now
    auto delay = backoff_.next(rng_);
    log::warn("privicore ack channel {}: {}; reconnecting in {}ms", url_.host_header(),
              last_error_, delay.count());
    pause_.expires_after(delay);
    co_await pause_.async_wait(use_tuple);
  }
  log::debug("privicore ack channel {} stopped", url_.host_header());
}

void ack_channel::stop() {
  stopped_ = true;
  if (abort_) abort_();
  pause_.cancel();
  joined_ = false;
  wake(nullptr);
}

void ack_channel::set_token(secret token) {
  token_ = std::move(token);
  if (stopped_) return;
  restart_ = true;
  if (abort_) abort_();
  pause_.cancel();
}

awaitable<result<void>> ack_channel::do_connect() {
  restart_ = false;
  auto deadline = steady_clock::now() + options_.connect_timeout;
  http::ssl::stream<beast::tcp_stream> stream(ex_, tls_);
  {
    abort_hook hook{abort_, [&stream] { stream.next_layer().close(); }};
    auto connected = co_await http::connect_stream(stream, url_, deadline, verify_);
    if (!connected) co_return connected.error();
  }
  if (stopped_ || restart_) co_return make_error(errc::unavailable, "connection abandoned");
  // One loop for both schemes: plain ws takes the TCP stream out of the unused TLS wrapper.
  if (url_.tls()) {
    websocket::stream<http::ssl::stream<beast::tcp_stream>> ws(std::move(stream));
    co_return co_await do_session(ws, deadline);
  }
  websocket::stream<beast::tcp_stream> ws(std::move(stream.next_layer()));
  co_return co_await do_session(ws, deadline);
}

template <class Stream>
awaitable<result<void>> ack_channel::do_session(Stream& ws, steady_clock::time_point deadline) {
  auto& tcp = beast::get_lowest_layer(ws);
  abort_hook hook{abort_, [&tcp] { tcp.close(); }};
  auto host = url_.host_header();

  // Until joined, the TCP stream's own deadline bounds every step; afterwards the WebSocket's
  // idle timeout (with pings) does.
  tcp.expires_at(deadline);
  ws.read_message_max(options_.max_message_bytes);
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(http::field::user_agent, "tokenbroker"); }));
  auto [hec] = co_await ws.async_handshake(host, url_.target(), use_tuple);
  if (hec) co_return http::io_error(hec, "WebSocket handshake with " + host);

  tcp.expires_after(options_.join_timeout);
  {
    secret frame = build_join_message(token_, random_hex(16));
    ws.text(true);
    auto [wec, n] = co_await ws.async_write(net::buffer(frame.reveal()), use_tuple);
    if (wec) co_return http::io_error(wec, "sending the join to " + host);
  }
  beast::flat_buffer buffer;
  std::string channel_id;
  while (channel_id.empty()) {
    auto [rec, n] = co_await ws.async_read(buffer, use_tuple);
    if (rec == beast::error::timeout)
      co_return make_error(errc::timeout, fmt::format("{} did not acknowledge the join within {}ms",
                                                      host, options_.join_timeout.count()));
    if (rec) co_return http::io_error(rec, "waiting for the join acknowledgement from " + host);
    auto msg = parse_ws_message(text_of(buffer));
    if (auto* ack = std::get_if<join_ack>(&msg)) {
      channel_id = ack->channel_id;
    } else if (auto* refused = std::get_if<join_failed>(&msg)) {
      std::string why = refused->message;
      redact(why, token_.reveal());
      co_return make_error(refused->status == 401 || refused->status == 403 ? errc::unauthorized
                                                                              : errc::rejected,
                           fmt::format("{} refused the join (status {}): {}", host,
                                       refused->status, why));
    } else {
      handle_message(msg);  // e.g. an ack the proxy buffered for us (§4.1)
    }
    buffer.consume(buffer.size());
  }

  tcp.expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options_.connect_timeout;  // also bounds a closing handshake
  timeouts.idle_timeout = options_.idle_timeout;
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  log::info("privicore ack channel joined {} (channel {}, generation {})", host,
            sanitize(channel_id, 80), generation_ + 1);
  set_joined(true);

  for (;;) {
    auto [rec, n] = co_await ws.async_read(buffer, use_tuple);
    if (rec) co_return http::io_error(rec, "reading from " + host);
    auto msg = parse_ws_message(text_of(buffer));
    buffer.consume(buffer.size());
    handle_message(msg);
  }
}

void ack_channel::handle_message(ws_message& msg) {
  if (auto* refused = std::get_if<join_failed>(&msg)) {
    log::warn("privicore ack channel: unexpected refusal (status {})", refused->status);
    return;
  }
  auto* ack = std::get_if<command_ack>(&msg);
  if (!ack) return;  // join acks, other types, keep-alives (§4.5)
  if (ack->command_status != 2 && ack->command_status != 3) {
    // 1 = pending, may repeat (§3, §7.3 #22); anything else is not final either.
    log::trace("privicore command {} status {}", sanitize(ack->id, 80), ack->command_status);
    return;
  }
  std::string id = ack->id;
  command_outcome outcome{id, ack->command_status == 2 ? command_state::succeeded
                                                       : command_state::rejected,
                          std::move(ack->body)};
  log::debug("privicore command {} {}", sanitize(id, 80), to_string(outcome.state));
  auto [it, inserted] = acks_.insert_or_assign(id, std::move(outcome));
  if (inserted) {
    ack_order_.push_back(id);
    while (ack_order_.size() > options_.max_buffered_acks) {
      acks_.erase(ack_order_.front());
      ack_order_.pop_front();
    }
  }
  wake(&id);
}

void ack_channel::set_joined(bool joined) {
  if (joined == joined_) return;
  joined_ = joined;
  if (joined) {
    ++generation_;
    backoff_.reset();
    last_error_.clear();
  }
  wake(nullptr);
}

void ack_channel::wake(const std::string* id) {
  for (waiter* w : waiters_)
    if (!id || (w->id && *w->id == *id)) w->timer.cancel();
}

std::optional<command_outcome> ack_channel::acknowledged(const std::string& id) const {
  auto it = acks_.find(id);
  if (it == acks_.end()) return std::nullopt;
  return it->second;
}

awaitable<result<void>> ack_channel::ensure_joined(steady_clock::time_point deadline) {
  while (!joined_) {
    if (stopped_) co_return make_error(errc::unavailable, "the acknowledgement channel is stopped");
    if (steady_clock::now() >= deadline)
      co_return make_error(errc::timeout,
                           "the acknowledgement channel did not join in time" +
                               (last_error_.empty() ? "" : " (last error: " + last_error_ + ")"));
    waiter w{*this, nullptr, deadline};
    co_await w.timer.async_wait(use_tuple);
  }
  co_return result<void>{};
}

awaitable<std::optional<command_outcome>> ack_channel::wait(std::string id,
                                                            steady_clock::time_point deadline) {
  if (auto outcome = acknowledged(id)) co_return outcome;
  if (stopped_ || steady_clock::now() >= deadline) co_return std::nullopt;
  {
    waiter w{*this, &id, deadline};
    co_await w.timer.async_wait(use_tuple);
  }
  co_return acknowledged(id);
}

}  // namespace tokenbroker::privicore
