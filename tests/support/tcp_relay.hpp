// A TCP relay on 127.0.0.1 for tests: forwards each connection to an upstream port, and can cut
// every connection and refuse new ones (a partition) until resumed, on the same port.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace tokenbroker::test {

class tcp_relay {
 public:
  /// Starts relaying 127.0.0.1:<a free port> to 127.0.0.1:`upstream_port`.
  explicit tcp_relay(std::uint16_t upstream_port);
  tcp_relay(const tcp_relay&) = delete;
  tcp_relay& operator=(const tcp_relay&) = delete;
  ~tcp_relay();

  std::uint16_t port() const noexcept;
  /// "http://127.0.0.1:PORT"
  std::string endpoint() const;
  /// Closes every relayed connection and stops accepting (connections are refused).
  void cut();
  /// Accepts again, on the same port.
  void resume();

 private:
  struct state;
  std::unique_ptr<state> s_;
};

}  // namespace tokenbroker::test
