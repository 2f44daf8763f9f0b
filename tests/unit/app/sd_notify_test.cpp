#include "app/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace tokenbroker::app {
namespace {

// A datagram socket as systemd listens on for notifications; `name` starting with '@' is in
// the abstract namespace.
class notify_listener {
 public:
  explicit notify_listener(std::string name) : name_(std::move(name)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name_.data(), name_.size());
    if (name_[0] == '@') addr.sun_path[0] = '\0';
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size())) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setenv("NOTIFY_SOCKET", name_.c_str(), 1);
  }
  ~notify_listener() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
    if (name_[0] == '/') std::filesystem::remove(name_);
  }
  // The next datagram; "" if none comes within 10 s.
  std::string receive() {
    char buf[256];
    auto n = ::recv(fd_, buf, sizeof buf, 0);
    return n < 0 ? std::string{} : std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::string name_;
  int fd_ = -1;
};

std::string unique(const char* what) {
  return std::string(what) + "-" + std::to_string(::getpid());
}

}  // namespace

TEST_CASE("notify_reaches_systemd_on_a_socket_path_and_in_the_abstract_namespace") {
  {
    notify_listener systemd(
        (std::filesystem::temp_directory_path() / unique("tb-notify-test")).string());
    notify("READY=1");
    CHECK(systemd.receive() == "READY=1");
    notify("STATUS=serving\nWATCHDOG=1");
    CHECK(systemd.receive() == "STATUS=serving\nWATCHDOG=1");
  }
  {
    notify_listener systemd("@" + unique("tb-notify-test"));
    notify("STOPPING=1");
    CHECK(systemd.receive() == "STOPPING=1");
  }
  // Outside systemd, and with an address it cannot use: nothing happens, nothing throws.
  notify("READY=1");
  ::setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
  notify("READY=1");
  ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("the_watchdog_interval_is_read_only_when_meant_for_this_process") {
  ::unsetenv("WATCHDOG_PID");
  ::unsetenv("WATCHDOG_USEC");
  CHECK_FALSE(watchdog_interval());
  ::setenv("WATCHDOG_USEC", "2500000", 1);
  CHECK(watchdog_interval() == std::chrono::microseconds{2500000});
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  CHECK(watchdog_interval() == std::chrono::microseconds{2500000});
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);  // the parent's
  CHECK_FALSE(watchdog_interval());
  ::unsetenv("WATCHDOG_PID");
  for (const char* bad : {"", "0", "2s", "-5", "99999999999999999999999"}) {
    CAPTURE(bad);
    ::setenv("WATCHDOG_USEC", bad, 1);
    CHECK_FALSE(watchdog_interval());
  }
  ::unsetenv("WATCHDOG_USEC");
}

TEST_CASE("passed_sockets_are_taken_only_when_meant_for_this_process_and_the_variables_go") {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  auto none = passed_sockets();
  REQUIRE(none.has_value());
  CHECK(none->empty());
  // Meant for another process (a parent that exec'd us without clearing them).
  ::setenv("LISTEN_PID", std::to_string(::getpid() + 1).c_str(), 1);
  ::setenv("LISTEN_FDS", "2", 1);
  ::setenv("LISTEN_FDNAMES", "a:b", 1);
  auto other = passed_sockets();
  REQUIRE(other.has_value());
  CHECK(other->empty());
  CHECK_FALSE(std::getenv("LISTEN_PID"));
  CHECK_FALSE(std::getenv("LISTEN_FDS"));
  CHECK_FALSE(std::getenv("LISTEN_FDNAMES"));
  // Garbage is an error, not silently "no sockets".
  ::setenv("LISTEN_PID", "self", 1);
  ::setenv("LISTEN_FDS", "1", 1);
  CHECK_FALSE(passed_sockets().has_value());
  CHECK_FALSE(std::getenv("LISTEN_PID"));
  // (Real passed sockets: integration_socket_activation, through systemd-socket-activate.)
}

}  // namespace tokenbroker::app
