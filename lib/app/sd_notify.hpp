// systemd readiness and watchdog notifications (no-ops outside systemd).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace tokenbroker::app {

/// Sends `state` ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET if set.
void notify(std::string_view state);
/// The watchdog interval systemd expects pings at, if WatchdogSec is set for this process.
std::optional<std::chrono::microseconds> watchdog_interval();

/// A listening socket passed by the service manager (socket activation).
struct passed_socket {
  int fd = -1;
  bool unix_socket = false;  // else TCP (IPv4 or IPv6)
};
/// The sockets in $LISTEN_FDS (empty when not socket-activated); the variables are unset so
/// children do not inherit them. Anything but a listening stream socket is an error.
result<std::vector<passed_socket>> passed_sockets();

}  // namespace tokenbroker::app
