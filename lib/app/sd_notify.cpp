// systemd's readiness and socket-activation protocols, written out from sd_notify(3) and
// sd_listen_fds(3), which document both as stable interfaces. Linking libsystemd for them
// brought liblzma, libzstd, liblz4, libgcrypt, libgpg-error and libcap into the daemon's
// address space (the way CVE-2024-3094 reached sshd) and 1.0 MiB of resident pages, for a few
// environment variables and one datagram.
#include "app/sd_notify.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.hpp"

namespace tokenbroker::app {

namespace {

constexpr int listen_fds_start = 3;  // SD_LISTEN_FDS_START

enum class parsed { absent, invalid, ok };

// An environment variable as a whole decimal number.
parsed env_number(const char* name, std::uint64_t& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return parsed::absent;
  const char* end = v + std::strlen(v);
  auto [stop, ec] = std::from_chars(v, end, out);
  return ec == std::errc{} && stop == end ? parsed::ok : parsed::invalid;
}

// A listening stream socket's family, or AF_UNSPEC for anything else.
int listening_stream_family(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return AF_UNSPEC;
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0 || value != SOCK_STREAM)
    return AF_UNSPEC;
  len = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0 || value == 0)
    return AF_UNSPEC;
  sockaddr_storage addr{};
  len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return AF_UNSPEC;
  return addr.ss_family;
}

}  // namespace

void notify(std::string_view state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (!env || !*env) return;
  std::string_view path(env);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A path, or '@' for a name in the abstract namespace. (systemd 254's "vsock:" addresses are
  // for virtual machines' managers, not for a service.)
  if ((path[0] != '/' && path[0] != '@') || path.size() >= sizeof addr.sun_path) {
    log::warn("NOTIFY_SOCKET {:?} is not a unix socket address; systemd is not told {}",
              std::string(path), std::string(state));
    return;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool sent = fd >= 0 && ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                   reinterpret_cast<const sockaddr*>(&addr), len) ==
                             static_cast<ssize_t>(state.size());
  int err = errno;
  if (fd >= 0) ::close(fd);
  if (!sent)
    log::warn("cannot tell systemd {} through {}: {}", std::string(state), std::string(path),
              std::strerror(err));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0, pid = 0;
  if (env_number("WATCHDOG_USEC", usec) != parsed::ok || usec == 0 ||
      usec > static_cast<std::uint64_t>(std::chrono::microseconds::max().count()))
    return std::nullopt;
  // WATCHDOG_PID, when set, names the process the watchdog is for (not a child of it).
  auto for_pid = env_number("WATCHDOG_PID", pid);
  if (for_pid == parsed::invalid ||
      (for_pid == parsed::ok && pid != static_cast<std::uint64_t>(::getpid())))
    return std::nullopt;
  return std::chrono::microseconds{static_cast<std::int64_t>(usec)};
}

result<std::vector<passed_socket>> passed_sockets() {
  std::uint64_t pid = 0, n = 0;
  auto for_pid = env_number("LISTEN_PID", pid);
  auto count = env_number("LISTEN_FDS", n);
  // Read once, then gone: children must not take the sockets for theirs.
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (for_pid == parsed::absent || (for_pid == parsed::ok && pid != std::uint64_t(::getpid())))
    return std::vector<passed_socket>{};  // not socket-activated, or meant for another process
  if (for_pid == parsed::invalid || count == parsed::invalid ||
      (count == parsed::ok && n > 1024))
    return make_error(errc::io, "LISTEN_PID/LISTEN_FDS: not valid numbers");
  std::vector<passed_socket> out;
  for (int fd = listen_fds_start; fd < listen_fds_start + static_cast<int>(n); ++fd) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
      return make_error(errc::io, "passed fd " + std::to_string(fd) + ": " + std::strerror(errno));
    int family = listening_stream_family(fd);
    if (family == AF_UNIX) {
      out.push_back({fd, true});
    } else if (family == AF_INET || family == AF_INET6) {
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
