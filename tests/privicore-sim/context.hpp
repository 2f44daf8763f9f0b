// The simulator's shared state for every session: options, live switches, the world state,
// faults and the WebSocket hub. One thread, so no locking.
#pragma once

#include <string>

#include "faults.hpp"
#include "http_util.hpp"
#include "options.hpp"
#include "state.hpp"
#include "ws.hpp"

namespace tokenbroker::sim {

class context {
 public:
  context(const options& opts, clock_fn now);
  context(const context&) = delete;
  context& operator=(const context&) = delete;

  /// The 202 answer for a new command, in the configured id shape, after arranging its acks:
  /// a pending message now, completion after ack_delay or, with ack_before_response, before
  /// this returns (PROTOCOL.md §3, §4.5).
  awaitable<response> accept_command(const request& req, const std::string& id);
  /// Completes a command now and pushes its ack; with `wait`, returns once it was written.
  awaitable<void> finish_command(std::string id, bool wait);
  /// Body of a command-id answer per switch (PROTOCOL.md §3.1).
  nlohmann::json id_body(const std::string& id);
  /// Body of a /request-status answer per switch (PROTOCOL.md §5.2).
  nlohmann::json status_body(const command& c);

  const options& opts;
  switches sw;
  state st;
  fault_table faults;
  hub ws;

 private:
  awaitable<void> run_ack_timer(std::string id, std::chrono::milliseconds delay);

  unsigned id_rotation_ = 0, status_rotation_ = 0, noise_ = 0;
};

/// {"data":{"type":"X-DPT-CAB-ID","id":...,"command_status":n,"body":...}} (PROTOCOL.md §4.5).
std::string ack_message(const std::string& id, int command_status, const std::string& body);

}  // namespace tokenbroker::sim
