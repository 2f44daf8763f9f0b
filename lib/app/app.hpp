// Wiring: config → clients, providers, credentials, listeners; signals; sd_notify.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"

namespace tokenbroker::app {

/// Runs the daemon with `cfg` until SIGTERM/SIGINT. Returns the process exit code.
int run_daemon(config::config cfg);

}  // namespace tokenbroker::app
