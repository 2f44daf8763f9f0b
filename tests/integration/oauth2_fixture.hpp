// The oauth2 side of integration tests: the real OpenID provider in tests/peers/oidc (Node.js,
// oidc-provider), a tokenbrokerd configured with oauth2 credentials against it, and a headless
// "browser" that logs in on the provider's pages.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/sim.hpp"
#include "support/temp_dir.hpp"

namespace tokenbroker::test {

/// The peer's clients (tests/peers/oidc/server.mjs) and its one person.
inline constexpr const char* cc_post_secret = "cc-post-secret";
inline constexpr const char* cc_basic_secret = "b4sic:s3cret+/ =%";
inline constexpr const char* app_secret = "app-secret";
inline constexpr const char* person = "alice";
inline constexpr const char* person_password = "alice-password";

/// A running OpenID provider on 127.0.0.1:0; terminated at destruction.
class oidc_peer {
 public:
  /// `access_ttl`: lifetime of the access tokens it issues. Throws with its stderr on failure.
  explicit oidc_peer(std::chrono::seconds access_ttl = std::chrono::seconds{5});
  ~oidc_peer();

  const std::string& url() const noexcept { return url_; }  // the issuer, "http://127.0.0.1:PORT"
  std::string token_url() const { return url_ + "/token"; }

  // Admin API (tests/peers/oidc/README.md); each throws unless the answer is 200.
  /// Every token request so far: body, authorization, grant_type, what was issued or refused.
  nlohmann::json token_requests() const;
  /// Queues `count` answers with `status` (and Retry-After) for the next token requests.
  void fault(int status, int count, const std::string& retry_after = {}) const;
  /// Revokes every grant of `client_id`; returns how many.
  int revoke(const std::string& client_id) const;
  /// A refresh token as if `person` had logged in to `client_id`.
  std::string mint_refresh_token(const std::string& client_id,
                                 const std::string& scope = "openid offline_access") const;

 private:
  nlohmann::json admin(const std::string& method, const std::string& target,
                       const std::string& body = {}) const;

  std::unique_ptr<process> proc_;
  std::string url_;
};

/// tokenbrokerd with the given [credential.*] tables (TOML text) in a temp directory.
class oauth2_broker {
 public:
  /// Writes `files` (name → content, mode 0600) and the config, starts the daemon and waits
  /// until it answers /healthz. `credentials` may name the directory as {dir}.
  explicit oauth2_broker(const std::string& credentials,
                         const std::map<std::string, std::string>& files = {},
                         bool persist = true);
  ~oauth2_broker();

  const temp_dir& dir() const noexcept { return *dir_; }
  const std::string& socket_path() const noexcept { return socket_; }
  process& proc() noexcept { return *proc_; }

  http_result call(const std::string& method, const std::string& target,
                   const std::string& body = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds{30}) const;
  /// GET /v1/token/{name} → the access token, or throws with the answer.
  std::string token(const std::string& name) const;
  /// The /v1/credentials entry for `name` (null when missing).
  nlohmann::json status(const std::string& name) const;
  /// Polls until `name` is in `state` or `timeout` passes; true when reached.
  bool wait_for_state(const std::string& name, const std::string& state,
                      std::chrono::milliseconds timeout) const;
  /// Stops with `sig` and starts again with the same config and state.
  void restart(int sig);
  /// Starts tokenbrokerctl with `args` against this daemon (no DISPLAY: never a browser).
  std::unique_ptr<process> ctl(std::vector<std::string> args) const;

 private:
  void start();

  std::unique_ptr<temp_dir> dir_;
  std::string socket_, config_;
  int starts_ = 0;
  std::unique_ptr<process> proc_;
};

/// Writes `content` to `dir`/`name` with mode 0600; returns the path.
std::string write_secret(const temp_dir& dir, const std::string& name, const std::string& content);

/// A headless browser for the provider's pages: a cookie jar and plain-HTTP requests.
class browser {
 public:
  struct page {
    int status = 0;
    std::string location;  // absolute
    std::string body;
  };
  /// One GET or form POST to an absolute http URL (loopback); cookies sent and remembered.
  page request(const std::string& method, const std::string& url, const std::string& form = {});
  /// Opens `authorization_url` and logs in as `user` with `password`, then allows (or, with
  /// `allow` false, denies) the consent; follows redirects until one leaves the provider's
  /// origin, and returns that Location (the broker's redirect URI with code and state).
  std::string authorize(const std::string& authorization_url, const std::string& user,
                        const std::string& password, bool allow = true);

 private:
  std::map<std::string, std::string> cookies_;
};

}  // namespace tokenbroker::test
