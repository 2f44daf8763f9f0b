#include "context.hpp"

#include "core/log.hpp"
#include "core/spawn.hpp"

namespace tokenbroker::sim {

using json = nlohmann::json;

context::context(const options& o, clock_fn now) : opts(o), sw(o.sw), st(std::move(now), sw) {}

std::string ack_message(const std::string& id, int command_status, const std::string& body) {
  return json{
      {"data",
       {{"type", "X-DPT-CAB-ID"}, {"id", id}, {"command_status", command_status}, {"body", body}}}}
      .dump();
}

json context::id_body(const std::string& id) {
  auto shape = sw.command_id_shape;
  if (shape == id_shape::rotate) shape = static_cast<id_shape>(id_rotation_++ % 3);
  if (shape == id_shape::array) return json::array({id});
  if (shape == id_shape::object) return json{{"commandId", id}};
  return json(id);
}

json context::status_body(const command& c) {
  auto shape = sw.status_shape;
  if (shape == id_shape::rotate) shape = static_cast<id_shape>(status_rotation_++ % 3);
  if (shape == id_shape::object)
    return json{{"commandId", c.id},
                {"command_status", static_cast<int>(c.status)},
                {"body", c.status == command_status::started ? json(nullptr) : json(c.body)}};
  const char* word = c.status == command_status::started     ? "started"
                     : c.status == command_status::succeeded ? "succeeded"
                                                             : "rejected";
  if (shape == id_shape::array) return json::array({word});
  return json(word);
}

awaitable<response> context::accept_command(const request& req, const std::string& id) {
  const command* c = st.find_command(id);
  std::string profile = c->profile;
  // Clients must ignore unrelated messages and repeated pending ones (PROTOCOL.md §3.4, §4.5).
  if (sw.ws_noise && noise_++ % 2 == 0) ws.publish(profile, R"({"type":"ping"})", false);
  if (sw.ws_pending) ws.publish(profile, ack_message(id, 1, "Command is being processed"), false);
  if (sw.ack_before_response) {
    co_await finish_command(id, true);
  } else {
    auto ex = co_await net::this_coro::executor;
    spawn_logged(ex, "ack " + id, run_ack_timer(id, sw.ack_delay));
  }
  co_return json_response(req, 202, id_body(id));
}

awaitable<void> context::run_ack_timer(std::string id, std::chrono::milliseconds delay) {
  net::steady_timer timer(co_await net::this_coro::executor, delay);
  co_await timer.async_wait(use_tuple);
  co_await finish_command(std::move(id), false);
}

awaitable<void> context::finish_command(std::string id, bool wait) {
  const command* c = st.complete(id);
  if (!c) co_return;
  log::debug("command {} finished with status {}", id, static_cast<int>(c->status));
  // (No co_await inside a conditional expression: GCC 12 miscompiles some of those.)
  auto ex = co_await net::this_coro::executor;
  std::shared_ptr<delivery> receipt;
  if (wait) receipt = std::make_shared<delivery>(ex);
  auto n =
      ws.publish(c->profile, ack_message(id, static_cast<int>(c->status), c->body), true, receipt);
  if (receipt && n > 0) co_await receipt->wait(std::chrono::seconds{2});
}

}  // namespace tokenbroker::sim
