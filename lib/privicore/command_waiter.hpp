// Waiting for an asynchronous command (PROTOCOL.md §3): on the WebSocket channel while it is
// joined, by polling /request-status otherwise, never missing an ack lost to a reconnect.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "privicore/ack_channel.hpp"
#include "privicore/client.hpp"
#include "privicore/types.hpp"

namespace tokenbroker::privicore {

/// Waits until command `id` is final and returns its outcome: succeeded, or rejected with the
/// server's reason in `body` (a rejection is a value, not an error: the caller decides what it
/// means). While `channel` (may be null) is joined, waits for its ack; after each reconnect, and
/// when the channel joined after `sent_generation` (its generation() when the command was sent;
/// 0 = unknown), polls once, since a missed ack is never re-sent (§4.6). Without a joined channel,
/// polls client.command_status every `poll_interval` (§5.2; PRB polls every 500 ms). Errors:
/// errc::timeout at `deadline` (naming the last poll failure), or at once the status endpoint's
/// 401/403 refusal. `profile` (may be null: P is then omitted) must outlive the wait.
awaitable<result<command_outcome>> wait_for_command(
    client& api, ack_channel* channel, std::string id, const secret* profile,
    steady_clock::time_point deadline,
    std::chrono::milliseconds poll_interval = std::chrono::milliseconds{500},
    std::uint64_t sent_generation = 0);

/// A rejected outcome as an errc::rejected error naming `what` and the server's reason; a
/// succeeded one as success (for callers that treat a rejection as a failure).
result<void> require_success(const command_outcome& outcome, std::string_view what);

}  // namespace tokenbroker::privicore
