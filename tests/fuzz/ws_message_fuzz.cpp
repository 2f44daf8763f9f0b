// Fuzz target: every text frame the Privicore WebSocket channel may send (PROTOCOL.md §4).
#include <variant>

#include "fuzz_support.hpp"
#include "privicore/ws_message.hpp"

using namespace tokenbroker;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto text = fuzz::as_view(data, size);
  auto m = privicore::parse_ws_message(text);
  // Statuses other than 1, 2 and 3 pass through on purpose: the ack channel treats all but 2 and 3
  // as not final (ack_channel.cpp). What must hold is that nothing unbounded gets through.
  if (auto* ack = std::get_if<privicore::command_ack>(&m))
    fuzz::require(ack->command_status >= -1000000 && ack->command_status <= 1000000 &&
                      ack->body.size() <= 1100,
                  "a command ack carries a small status and a bounded body");
  if (auto* join = std::get_if<privicore::join_ack>(&m))
    fuzz::require(!join->channel_id.empty(), "a join ack has a channel id");
  if (auto* failed = std::get_if<privicore::join_failed>(&m))
    fuzz::require(failed->message.size() <= 1024, "a refusal message is sanitized and truncated");
  return 0;
}
