// A real etcd (Debian's etcd-server, /usr/bin/etcd) for tests: one member on 127.0.0.1 with free
// client and peer ports and a temp data dir, stopped and started again on the same data,
// optionally with authentication on (user "root"), optionally over https with client-certificate
// authentication (a throw-away CA, server and client certificate in the temp dir).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support/process.hpp"
#include "support/sim.hpp"
#include "support/temp_dir.hpp"

namespace tokenbroker::test {

struct etcd_fixture_options {
  /// Non-empty: create user "root" with this password and turn authentication on.
  std::string root_password;
  /// --auth-token-ttl in seconds (how long a simple auth token lives unused).
  int auth_token_ttl = 300;
  /// https on the client port, and only clients with a certificate from the fixture's CA are let
  /// in (--client-cert-auth). client_tls() names the files a client needs.
  bool tls = false;
  std::chrono::milliseconds ready_timeout{std::chrono::seconds{30}};
};

class etcd_fixture {
 public:
  /// Starts etcd and waits until it answers; throws std::runtime_error (with its log) if not.
  explicit etcd_fixture(etcd_fixture_options options = {});
  etcd_fixture(const etcd_fixture&) = delete;
  etcd_fixture& operator=(const etcd_fixture&) = delete;
  /// Kills etcd if it still runs.
  ~etcd_fixture();

  /// "http://127.0.0.1:PORT" ("https://" with `tls`), the same across stop()/start().
  const std::string& endpoint() const noexcept { return endpoint_; }
  /// With `tls`: the CA that signed etcd's certificate, and a client certificate (CN
  /// "tokenbroker") and key (mode 0600) etcd accepts. Empty without `tls`.
  const tls_files& client_tls() const noexcept { return client_tls_; }
  std::uint16_t port() const noexcept { return client_port_; }
  const temp_dir& dir() const noexcept { return dir_; }

  /// SIGTERM, and waits for it to exit (SIGKILL after 10 s).
  void stop();
  /// SIGKILL, as a crash would.
  void kill();
  /// Starts it again on the same data dir and ports; waits until it answers.
  void start();
  bool running();
  /// Its log (every run so far), for failure messages.
  std::string log() const;

  /// A raw POST to the JSON gateway (`token`: the Authorization header, if any), with the
  /// client certificate when `tls`.
  http_result call(const std::string& path, const nlohmann::json& body,
                   const std::string& token = {}) const;
  /// POST /v3/auth/authenticate as root; the token.
  std::string root_token() const;
  /// The value at `key` (through the gateway, as root when authentication is on), nullopt when
  /// there is none; throws std::runtime_error when etcd does not answer 200.
  std::optional<std::string> get(const std::string& key) const;

 private:
  void launch();
  void wait_ready();
  void enable_auth();
  void make_certificates();

  etcd_fixture_options options_;
  temp_dir dir_;
  std::unique_ptr<process> proc_;
  std::uint16_t client_port_ = 0, peer_port_ = 0;
  std::string endpoint_;
  tls_files client_tls_;
  std::string server_cert_file_, server_key_file_;
  int runs_ = 0;
};

/// A TCP port on 127.0.0.1 that nothing listens on right now.
std::uint16_t free_port();

}  // namespace tokenbroker::test
