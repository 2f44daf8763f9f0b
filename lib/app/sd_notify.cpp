#include "app/sd_notify.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstring>
#include <string>

namespace tokenbroker::app {

void notify(std::string_view state) { sd_notify(0, std::string(state).c_str()); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
    return std::chrono::microseconds{static_cast<std::int64_t>(usec)};
  return std::nullopt;
}

result<std::vector<passed_socket>> passed_sockets() {
  int n = sd_listen_fds(1);
  if (n < 0) return make_error(errc::io, std::string("LISTEN_FDS: ") + std::strerror(-n));
  std::vector<passed_socket> out;
  for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; ++fd) {
    if (sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) > 0) {
      out.push_back({fd, true});
    } else if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0) {
      out.push_back({fd, false});
    } else {
      // A datagram socket, a FIFO or a socket not listening: a mistake in the .socket unit.
      return make_error(errc::invalid_argument,
                        "passed fd " + std::to_string(fd) +
                            " is not a listening stream socket (ListenStream= only)");
    }
  }
  return out;
}

}  // namespace tokenbroker::app
