// The WebSocket acknowledgement channel (PROTOCOL.md §4): join/leave by profile token, acks
// pushed to every socket joined to the command's profile, never replayed to late joiners.
#pragma once

#include <boost/beast/websocket.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/asio.hpp"
#include "http/beast.hpp"

namespace tokenbroker::sim {

class context;

/// Lets a sender wait until every socket it published to has written the message.
struct delivery {
  explicit delivery(net::any_io_executor ex) : done(std::move(ex)) {}
  /// Waits until all copies are written or `timeout` passes.
  awaitable<void> wait(std::chrono::milliseconds timeout);
  void one_done();
  std::size_t remaining = 0;
  net::steady_timer done;
};

struct ws_message {
  ws_message(std::string t, bool is_ack = false, std::shared_ptr<delivery> r = {})
      : text(std::move(t)), ack(is_ack), receipt(std::move(r)) {}
  std::string text;
  bool ack = false;  // a final command ack (counted in acks_sent)
  std::shared_ptr<delivery> receipt;
};

/// One WebSocket connection as the hub sees it: a send queue drained by a single writer.
struct ws_conn {
  explicit ws_conn(net::any_io_executor ex) : wake(std::move(ex)) {}
  ~ws_conn() { drop_queue(); }
  /// Queues a message and wakes the writer; false (message dropped) once closed or overfull.
  bool push(ws_message m);
  /// Releases waiters of messages that will never be written.
  void drop_queue();

  std::deque<ws_message> queue;
  net::steady_timer wake;
  std::string profile;  // joined channel's profile, "" when not joined
  std::string channel_id;
  bool closed = false;
};

class hub {
 public:
  void add(ws_conn* c) { conns_.push_back(c); }
  void remove(ws_conn* c);
  /// Queues `text` to every socket joined to `profile`; returns how many got it.
  std::size_t publish(std::string_view profile, const std::string& text, bool ack,
                      const std::shared_ptr<delivery>& receipt = {});

 private:
  std::vector<ws_conn*> conns_;
};

/// Completes the upgrade `req` on `stream` and serves the WebSocket until either side closes.
/// Instantiated for beast::tcp_stream and ssl::stream<beast::tcp_stream>.
template <class Stream>
awaitable<void> run_ws_session(context& ctx, Stream stream,
                               http::bhttp::request<http::bhttp::empty_body> req);

/// Handles one client text frame (joinChannel, leaveChannel); replies go to `conn`'s queue.
void handle_ws_message(context& ctx, ws_conn& conn, std::string_view text);

}  // namespace tokenbroker::sim
