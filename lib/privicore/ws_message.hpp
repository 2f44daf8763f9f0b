// Frames of the WebSocket acknowledgement channel (PROTOCOL.md §4): the join request we send and
// a classification of everything the proxy sends. Pure, so every shape is unit-tested.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "core/secret.hpp"

namespace tokenbroker::privicore {

/// §4.3: `status == 200` with a non-empty `data.channelId` (PRB's rule; OFF adds the echo).
struct join_ack {
  std::string channel_id;
  std::string correlation_id;  // "" when not echoed
};

/// A join refusal. Its shape is UNKNOWN (§4.3): any integer `status` other than 200, or a
/// top-level `error` string, on a message that is not a command acknowledgement.
struct join_failed {
  int status = 0;       // 0 when the message carried no status
  std::string message;  // the server's text, sanitized and truncated
};

/// §4.5: `data.type == "X-DPT-CAB-ID"`, `data.id`, `data.command_status` 1|2|3, `data.body`.
struct command_ack {
  std::string id;
  int command_status = 0;
  std::string body;  // "" when null (SET stubs); JSON text when not a string
};

/// Anything else: other types (X-DPT-CAB-REQUEST-ID, STREAM-READY), keep-alives, bad JSON.
struct ignored_message {};

using ws_message = std::variant<ignored_message, join_ack, join_failed, command_ack>;

/// Classifies one text frame. Never fails: what is not understood is ignored (§4.5, AGT).
ws_message parse_ws_message(std::string_view text);

/// The join frame (§4.2). OFF requires `correlationId` but its placement is UNKNOWN (§7.5 #37),
/// and PRB's live-aligned code sends none: it goes both inside `data` and at the top level, as
/// the proxy is expected to ignore unknown keys. Held as a secret: it carries the token.
secret build_join_message(const secret& token, std::string_view correlation_id);

}  // namespace tokenbroker::privicore
