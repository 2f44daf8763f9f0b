// Socket activation for real: systemd-socket-activate (from the systemd package) binds the
// sockets and starts tokenbrokerd on the first connection, as tokenbroker.socket does.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <csignal>
#include <cstring>
#include <fstream>
#include <regex>
#include <thread>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

namespace {

void write_private(const std::string& path, const std::string& content) {
  std::ofstream(path) << content;
  ::chmod(path.c_str(), 0600);
}

// A loopback port free right now (systemd-socket-activate cannot bind port 0).
std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// The datagram socket systemd listens on for a service's notifications ($NOTIFY_SOCKET).
class notify_receiver {
 public:
  explicit notify_receiver(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~notify_receiver() { ::close(fd_); }
  // Whether `message` arrives within `timeout`; the messages before it are kept in seen().
  bool wait_for(const std::string& message, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[256];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0) continue;  // the 100 ms receive timeout: look at the clock again
      seen_.emplace_back(buf, static_cast<std::size_t>(n));
      if (seen_.back() == message) return true;
    }
    return false;
  }
  // What arrived so far, for a failure's message.
  std::string seen() const {
    std::string out;
    for (const auto& m : seen_) out += (out.empty() ? "" : " | ") + m;
    return out;
  }

 private:
  int fd_ = -1;
  std::vector<std::string> seen_;
};

// The config names a socket and a listener of its own: under activation neither may be used.
// Secrets are read through ${CREDENTIALS_DIRECTORY}, as under the shipped unit.
struct activated_broker {
  temp_dir dir;
  std::string config = dir.file("tokenbroker.toml");
  std::string socket = dir.file("act.sock");
  std::string unused_socket = dir.file("config.sock");
  notify_receiver systemd{dir.file("notify.sock")};
  std::unique_ptr<process> proc;

  activated_broker(const sim_fixture& sim, const std::string& tcp_listen) {
    ::mkdir(dir.file("creds").c_str(), 0700);
    write_private(dir.file("creds/tokenbroker_secret"), test_client_secret);
    write_private(dir.file("creds/tokenbroker_password"), test_password);
    std::string cfg;
    cfg += "[server]\n";
    cfg += "socket = \"" + unused_socket + "\"\n";
    cfg += "listen = \"127.0.0.1:1\"\n";
    cfg += "[credential.privicore]\n";
    cfg += "provider = \"privicore\"\n";
    cfg += "api_url = \"" + sim.url() + "\"\n";
    cfg += "client_id = \"" + std::string(test_client_id) + "\"\n";
    cfg += "client_secret_file = \"${CREDENTIALS_DIRECTORY}/tokenbroker_secret\"\n";
    cfg += "username = \"" + std::string(test_username) + "\"\n";
    cfg += "password_file = \"${CREDENTIALS_DIRECTORY}/tokenbroker_password\"\n";
    write_private(config, cfg);
    proc = std::make_unique<process>(process_options{
        // As under the shipped unit (Type=notify, WatchdogSec=): readiness and watchdog pings
        // go to $NOTIFY_SOCKET, every WATCHDOG_USEC / 2.
        {"systemd-socket-activate", "-E", "CREDENTIALS_DIRECTORY=" + dir.file("creds"), "-E",
         "NOTIFY_SOCKET=" + dir.file("notify.sock"), "-E", "WATCHDOG_USEC=400000", "-l",
         socket, "-l", tcp_listen, bin_path("tokenbrokerd"), "--config", config, "--log-level",
         "debug"},
        {},
        {},
        dir.file("broker.log")});
    // The activator logs "Listening on ADDRESS as FD." once each socket listens; the daemon
    // starts on the first connection.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto text = proc->stderr_text();
      std::size_t listening = 0;
      for (auto at = text.find("Listening on "); at != std::string::npos;
           at = text.find("Listening on ", at + 1))
        ++listening;
      if (listening == 2) break;
      if (!proc->running() || std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("systemd-socket-activate did not listen:\n" + text);
      std::this_thread::sleep_for(10ms);
    }
  }

  // Polls the log for `pattern` (a regex with one group); "" when `timeout` passes.
  std::string wait_for_log(const std::string& pattern, std::chrono::milliseconds timeout) {
    std::regex re(pattern);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      auto text = proc->stderr_text();
      if (std::regex_search(text, m, re)) return m[1].str();
      std::this_thread::sleep_for(20ms);
    }
    return {};
  }
};

}  // namespace

TEST_CASE("passed_unix_and_tcp_sockets_serve_tokens_and_the_configured_ones_are_not_used") {
  sim_fixture sim(sim_flags_for_broker());
  auto port = free_port();
  activated_broker b(sim, "127.0.0.1:" + std::to_string(port));

  // The first connection starts the daemon; it waits for the grant and answers.
  auto r = unix_call(b.socket, "GET", "/v1/token/privicore", {}, {}, 20s);
  REQUIRE_MESSAGE(r.status == 200, r.body, r.error, b.proc->stderr_text());
  auto token = r.json()["access_token"].get<std::string>();
  CHECK(sim.check(token)["valid"] == true);
  // Ready was said, and the watchdog is fed.
  CHECK_MESSAGE(b.systemd.wait_for("READY=1", 10s), "received: ", b.systemd.seen());
  CHECK_MESSAGE(b.systemd.wait_for("WATCHDOG=1", 10s), "received: ", b.systemd.seen());

  CHECK(b.wait_for_log(R"(listening on 127\.0\.0\.1:(\d+) \(socket activation\))", 5s) ==
        std::to_string(port));
  auto base = "http://127.0.0.1:" + std::to_string(port);
  auto tcp = http_call(base, "", "GET", "/v1/token/privicore", {{"X-Token-Broker", "1"}});
  REQUIRE_MESSAGE(tcp.status == 200, tcp.body, tcp.error);
  CHECK(tcp.json()["access_token"] == token);
  CHECK(http_call(base, "", "GET", "/readyz").status == 200);
  CHECK(http_call(base, "", "GET", "/v1/token/privicore").status == 412);

  struct stat st {};
  CHECK(::stat(b.unused_socket.c_str(), &st) != 0);
  CHECK(b.proc->stderr_text().find("server.socket and server.listen are not used") !=
        std::string::npos);

  // The socket file belongs to the socket unit: a stop must leave it in place.
  b.proc->kill(SIGTERM);
  CHECK_MESSAGE(b.systemd.wait_for("STOPPING=1", 10s), "received: ", b.systemd.seen());
  auto exit = b.proc->wait_exit(15s);
  REQUIRE(exit);
  CHECK_MESSAGE(exit->ok(), exit->describe());
  CHECK(::stat(b.socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
}

TEST_CASE("a_passed_non_loopback_tcp_socket_is_refused_without_listen_public") {
  sim_fixture sim(sim_flags_for_broker());
  activated_broker b(sim, "0.0.0.0:" + std::to_string(free_port()));
  // Any connection starts the daemon, which must then refuse to serve and exit 1.
  unix_call(b.socket, "GET", "/healthz", {}, {}, 5s);
  auto exit = b.proc->wait_exit(15s);
  REQUIRE(exit);
  CHECK(exit->exited);
  CHECK(exit->code == 1);
  CHECK(b.proc->stderr_text().find("is not a loopback address; set server.listen_public = true") !=
        std::string::npos);
}
