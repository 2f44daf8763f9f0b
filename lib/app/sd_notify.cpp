#include "app/sd_notify.hpp"

#include <systemd/sd-daemon.h>

#include <string>

namespace tokenbroker::app {

void notify(std::string_view state) { sd_notify(0, std::string(state).c_str()); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    return std::chrono::microseconds{static_cast<std::int64_t>(usec)};
  return std::nullopt;
}

}  // namespace tokenbroker::app
