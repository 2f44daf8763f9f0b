#include "ws.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "core/log.hpp"

namespace tokenbroker::sim {
namespace {

using json = nlohmann::json;
namespace websocket = boost::beast::websocket;
using namespace boost::asio::experimental::awaitable_operators;
using http::beast::get_lowest_layer;

constexpr std::size_t max_queue = 4096;  // a client this far behind is dropped

template <class Stream>
awaitable<void> do_read_loop(context& ctx, websocket::stream<Stream>& ws, ws_conn& conn) {
  http::beast::flat_buffer buf;
  for (;;) {
    auto [ec, n] = co_await ws.async_read(buf, use_tuple);
    if (ec) break;
    handle_ws_message(ctx, conn, http::beast::buffers_to_string(buf.data()));
    buf.consume(buf.size());
  }
  conn.closed = true;
  conn.wake.cancel();
}

// The only writer of `ws` (one write in flight per stream); also sends keep-alive pings.
template <class Stream>
awaitable<void> do_write_loop(context& ctx, websocket::stream<Stream>& ws, ws_conn& conn) {
  while (!conn.closed) {
    if (conn.queue.empty()) {
      conn.wake.expires_after(ctx.sw.ws_ping_interval);
      auto [ec] = co_await conn.wake.async_wait(use_tuple);
      if (!ec && !conn.closed && ctx.sw.ws_noise && conn.queue.empty())
        conn.push({R"({"type":"ping"})"});
      continue;
    }
    ws_message m = std::move(conn.queue.front());
    conn.queue.pop_front();
    ws.text(true);
    auto [ec, n] = co_await ws.async_write(net::buffer(m.text), use_tuple);
    if (m.receipt) m.receipt->one_done();
    if (ec) {
      conn.closed = true;
      break;
    }
    if (m.ack) ++ctx.st.count().acks_sent;
  }
  conn.drop_queue();
  get_lowest_layer(ws).close();  // wakes the reader if it is still waiting
}

json reply_envelope(const json& correlation, int status, json data) {
  json r{{"status", status}, {"data", std::move(data)}};
  if (!correlation.is_null()) r["correlationId"] = correlation;
  return r;
}

std::string string_field(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

awaitable<void> delivery::wait(std::chrono::milliseconds timeout) {
  if (remaining == 0) co_return;
  done.expires_after(timeout);
  co_await done.async_wait(use_tuple);
}

void delivery::one_done() {
  if (remaining > 0 && --remaining == 0) done.cancel();
}

bool ws_conn::push(ws_message m) {
  if (!closed && queue.size() >= max_queue) {
    log::warn("WebSocket client {} messages behind: dropping it", queue.size());
    closed = true;  // the writer stops and closes the socket
    wake.cancel();
  }
  if (closed) {
    if (m.receipt) m.receipt->one_done();
    return false;
  }
  queue.push_back(std::move(m));
  wake.cancel();
  return true;
}

void ws_conn::drop_queue() {
  for (auto& m : queue)
    if (m.receipt) m.receipt->one_done();
  queue.clear();
}

void hub::remove(ws_conn* c) {
  std::erase(conns_, c);
}

std::size_t hub::publish(std::string_view profile, const std::string& text, bool ack,
                         const std::shared_ptr<delivery>& receipt) {
  std::size_t n = 0;
  for (ws_conn* c : conns_) {
    if (c->closed || c->profile.empty() || c->profile != profile) continue;
    if (receipt) ++receipt->remaining;
    if (c->push({text, ack, receipt})) ++n;
  }
  return n;
}

// joinChannel / leaveChannel (PROTOCOL.md §4.2–§4.4). correlationId is read inside `data` or at
// the top level (its placement is UNKNOWN) and echoed at the top level as in OFF's example.
void handle_ws_message(context& ctx, ws_conn& conn, std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    conn.push({reply_envelope(nullptr, 400, {{"message", "Invalid JSON."}}).dump()});
    return;
  }
  json data = j.contains("data") && j["data"].is_object() ? j["data"] : json::object();
  json corr = data.contains("correlationId") ? data["correlationId"]
                                             : j.value("correlationId", json(nullptr));
  auto action = string_field(j, "action");
  if (action == "joinChannel") {
    auto p = ctx.st.profile_of(string_field(data, "authorizationToken"));
    if (!p) {
      log::debug("ws join refused: {}", p.error().message);
      conn.push(
          {reply_envelope(corr, 401,
                          {{"message", "Invalid authorization token."}, {"error", p.error().error}})
               .dump()});
      return;
    }
    // One subscription per connection: a second join replaces the first.
    conn.profile = *p;
    conn.channel_id = new_uuid();
    conn.push({reply_envelope(corr, 200,
                              {{"channelId", conn.channel_id},
                               {"message", "Successfully joined profile channel."}})
                   .dump()});
  } else if (action == "leaveChannel") {
    if (conn.profile.empty()) {
      conn.push({reply_envelope(corr, 404, {{"message", "Not joined to a channel."}}).dump()});
      return;
    }
    auto id = std::exchange(conn.channel_id, {});
    conn.profile.clear();
    conn.push(
        {reply_envelope(corr, 200,
                        {{"channelId", id}, {"message", "Successfully left profile channel."}})
             .dump()});
  } else {
    conn.push({reply_envelope(corr, 400, {{"message", "Unknown action."}}).dump()});
  }
}

template <class Stream>
awaitable<void> run_ws_session(context& ctx, Stream stream,
                               http::bhttp::request<http::bhttp::empty_body> req) {
  websocket::stream<Stream> ws(std::move(stream));
  get_lowest_layer(ws).expires_never();  // the websocket's own timeouts take over
  ws.set_option(websocket::stream_base::timeout::suggested(http::beast::role_type::server));
  ws.read_message_max(64 * 1024);
  auto [aec] = co_await ws.async_accept(req, use_tuple);
  if (aec) {
    log::debug("ws upgrade failed: {}", aec.message());
    co_return;
  }
  ws_conn conn(co_await net::this_coro::executor);
  auto& counts = ctx.st.count();
  ++counts.ws_connections;
  ++counts.ws_open;
  ctx.ws.add(&conn);
  struct unregister {
    context& ctx;
    ws_conn& conn;
    ~unregister() {
      ctx.ws.remove(&conn);
      --ctx.st.count().ws_open;
    }
  } guard{ctx, conn};
  co_await (do_read_loop(ctx, ws, conn) && do_write_loop(ctx, ws, conn));
}

template awaitable<void> run_ws_session(context&, http::beast::tcp_stream,
                                        http::bhttp::request<http::bhttp::empty_body>);
template awaitable<void> run_ws_session(context&, http::ssl::stream<http::beast::tcp_stream>,
                                        http::bhttp::request<http::bhttp::empty_body>);

}  // namespace tokenbroker::sim
