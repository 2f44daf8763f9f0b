// privicore-sim for integration tests: start it on 127.0.0.1:0, talk to it with blocking calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

namespace tokenbroker::test {

using headers_list = std::vector<std::pair<std::string, std::string>>;

/// The answer to a blocking HTTP call. `error` is set (and status 0) when no answer arrived.
struct http_result {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;  // e.g. "timeout: ...", "transport: ... reset by peer"
  /// The body as JSON; throws nlohmann::json::parse_error if it is not.
  nlohmann::json json() const { return nlohmann::json::parse(body); }
  /// A header value, "" if absent (name in any case).
  std::string header(const std::string& name) const;
};

/// One blocking HTTP/1.1 request to `base_url` (http or https; https is verified against
/// `ca_file` for peer and host name). A fresh connection per call, everything within `timeout`.
http_result http_call(const std::string& base_url, const std::string& ca_file,
                      const std::string& method, const std::string& target,
                      const headers_list& headers = {}, const std::string& body = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds{5});

/// The files an https client trusts and presents (PEM); empty ones are not used.
struct tls_files {
  std::string ca_file;    // extra trusted CA
  std::string cert_file;  // client certificate, for servers that ask for one
  std::string key_file;   // its key
};

/// http_call that also presents a client certificate (`tls.cert_file`, `tls.key_file`).
http_result http_call_tls(const std::string& base_url, const tls_files& tls,
                          const std::string& method, const std::string& target,
                          const headers_list& headers = {}, const std::string& body = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds{5});

/// "Basic " + base64(id ":" secret): header C of PROTOCOL.md §2.
std::string basic_auth(const std::string& id, const std::string& secret);
/// application/x-www-form-urlencoded body from name/value pairs.
std::string form_body(const headers_list& fields);

/// A running privicore-sim; terminated (SIGTERM) at destruction.
class sim_fixture {
 public:
  /// Starts privicore-sim on 127.0.0.1:0 with `flags`; with "--tls" and no "--ca-out", the CA
  /// goes to a temp file (ca_file()). Throws std::runtime_error (with its stderr) on failure.
  explicit sim_fixture(std::vector<std::string> flags = {},
                       std::chrono::milliseconds ready_timeout = std::chrono::seconds{15});
  ~sim_fixture();

  const std::string& url() const noexcept { return url_; }  // "http://127.0.0.1:PORT"
  std::uint16_t port() const noexcept { return port_; }
  bool tls() const noexcept { return tls_; }
  const std::string& ca_file() const noexcept { return ca_file_; }
  /// "ws://127.0.0.1:PORT" + path (wss with TLS).
  std::string ws_url(const std::string& path = "/ws") const;
  process& proc() noexcept { return *proc_; }
  const temp_dir& dir() const noexcept { return dir_; }

  /// A request to the simulator (see http_call).
  http_result http_call(const std::string& method, const std::string& target,
                        const headers_list& headers = {}, const std::string& body = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds{5}) const;
  /// POST with a form body.
  http_result post_form(const std::string& target, const headers_list& fields,
                        const headers_list& headers = {}) const;

  // Admin API (README.md); each throws std::runtime_error unless the answer is 200.
  nlohmann::json stats() const;
  /// PUT /_sim/config with `changes` (GET when null); returns the resulting config.
  nlohmann::json config(const nlohmann::json& changes = nullptr) const;
  void fault(const nlohmann::json& f) const;
  void clear_faults() const;
  nlohmann::json check(const std::string& token) const;
  std::size_t revoke_grants(const std::string& client_id) const;
  nlohmann::json events() const;
  void expire(const std::string& token) const;
  /// GET /_sim/secrets: `[{"kind","value"}]`, every secret the simulator issued or was given.
  nlohmann::json secrets() const;

 private:
  nlohmann::json admin(const std::string& method, const std::string& target,
                       const nlohmann::json& body) const;

  temp_dir dir_;
  std::unique_ptr<process> proc_;
  std::string url_, ca_file_;
  std::uint16_t port_ = 0;
  bool tls_ = false;
};

}  // namespace tokenbroker::test
