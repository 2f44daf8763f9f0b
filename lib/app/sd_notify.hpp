// systemd readiness and watchdog notifications (no-ops outside systemd).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace tokenbroker::app {

/// Sends `state` ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET if set.
void notify(std::string_view state);
/// The watchdog interval systemd expects pings at, if WatchdogSec is set for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace tokenbroker::app
