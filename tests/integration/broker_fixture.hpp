// tokenbrokerd for integration tests: a config written to a temp dir, the real daemon started
// against a privicore-sim, and blocking calls over its unix socket.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/sim.hpp"
#include "support/temp_dir.hpp"

namespace tokenbroker::test {

struct broker_options {
  bool profile_login = true;    // configure username/password_file (unattended grants)
  bool websocket = true;        // ws_url set (acks over the WebSocket), else polling
  std::string extra_server;     // extra lines for [server]
  std::string extra_credential; // extra lines for [credential.privicore]
  std::string log_level = "debug";
  std::string log_format = "text";  // --log-format
  bool persist = true;          // state_key_file set: tokens survive restarts
  std::string extra_toml;       // appended after every table (e.g. a [cluster] table)
};

/// The sim flags a broker test needs: the demo profile and an app with known client secret.
std::vector<std::string> sim_flags_for_broker(std::vector<std::string> extra = {});

inline constexpr const char* test_client_id = "broker-client";
inline constexpr const char* test_client_secret = "broker-client-secret-value";
inline constexpr const char* test_username = "grantor";
inline constexpr const char* test_password = "grantor-password-value";

class broker_fixture {
 public:
  /// Writes the config and starts tokenbrokerd; waits until its socket answers /healthz.
  broker_fixture(const sim_fixture& sim, broker_options options = {});
  ~broker_fixture();

  const std::string& socket_path() const noexcept { return socket_; }
  const std::string& config_path() const noexcept { return config_; }
  process& proc() noexcept { return *proc_; }
  const temp_dir& dir() const noexcept { return dir_; }

  /// Stops the daemon with `sig` (SIGTERM: graceful; SIGKILL: crash) and starts it again with the
  /// same config and state directory.
  void restart(int sig);

  /// One blocking HTTP/1.1 request over the unix socket.
  http_result call(const std::string& method, const std::string& target,
                   const headers_list& headers = {}, const std::string& body = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds{15}) const;
  /// GET /v1/token/privicore → the access token, or throws with the answer.
  std::string token(const std::string& query = {}) const;
  /// The state field of /v1/credentials for `name`.
  std::string state(const std::string& name = "privicore") const;
  /// Polls /v1/credentials until `name` is in `state` or `timeout` passes; true when reached.
  bool wait_for_state(const std::string& state, std::chrono::milliseconds timeout,
                      const std::string& name = "privicore") const;

 private:
  void start();

  temp_dir dir_;
  std::string socket_, config_;
  int starts_ = 0;
  std::string log_level_, log_format_;
  std::unique_ptr<process> proc_;
};

/// One blocking HTTP/1.1 request over a unix socket. `connected`, when given, is incremented
/// once the connection is accepted (tests that need every caller to be in before they act).
http_result unix_call(const std::string& socket_path, const std::string& method,
                      const std::string& target, const headers_list& headers = {},
                      const std::string& body = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds{15},
                      std::atomic<int>* connected = nullptr);

}  // namespace tokenbroker::test
