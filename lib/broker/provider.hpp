// The seam to a token endpoint. The broker's engine knows nothing of Privicore or RFC 6749; a
// provider turns their answers into token bundles and their failures into the errc classes below.
#pragma once

#include <optional>
#include <string>

#include "broker/token.hpp"
#include "core/asio.hpp"
#include "core/error.hpp"

namespace tokenbroker::broker {

/// How the engine reacts to a provider failure.
enum class failure_class {
  retry,         // transport, timeout, 5xx, 429: back off and try again
  grant_dead,    // the refresh token (or grant) is no longer accepted: re-grant or needs_grant
  fatal,         // our request or our client is wrong: error state, no retry loop
};

/// Generic classification: errc::unauthorized and HTTP 401 → grant_dead; transport, timeout,
/// tls, unavailable, 408, 429 and 5xx → retry; everything else → fatal.
failure_class classify(const error& e);

/// The outcome of an asynchronous upstream command (Privicore's 202 + command id).
struct command_result {
  bool succeeded = false;
  std::string body;  // the server's status text or rejection reason
};

/// Interactive login material handed over by `tokenbrokerctl login` (never stored).
struct login_input {
  std::string username;
  secret password;
  secret profile_token;  // instead of username/password
  secret code;           // authorization code (oauth2 authorization_code flow)
  secret code_verifier;  // its PKCE verifier (RFC 7636)
  std::string redirect_uri;
  secret refresh_token;  // oauth2: a new refresh token handed over by an operator
};

class provider {
 public:
  virtual ~provider() = default;

  /// Renews the access token with `current.refresh_token`. nullopt: the provider accepted the
  /// request but returned no token (Privicore's bodyless 202, PROTOCOL.md §5.12).
  virtual awaitable<result<std::optional<token_bundle>>> refresh(const token_bundle& current) = 0;

  /// Obtains a fresh grant without a person (stored profile login, client credentials).
  /// errc::unavailable when this provider cannot do so.
  virtual awaitable<result<token_bundle>> grant() = 0;
  /// True when grant() can work unattended.
  virtual bool can_grant() const = 0;

  /// Runs an interactive grant with material from `tokenbrokerctl login`. Whatever the login
  /// used and must be dropped (Privicore's profile session) waits for login_adopted().
  virtual awaitable<result<token_bundle>> login(const login_input& input) = 0;
  /// Called after a successful login() once the credential has saved its bundle: from here a
  /// crash no longer loses the new grant, so what the login used may go.
  virtual awaitable<void> login_adopted() { co_return; }

  /// Whether the refresh token alone can renew the access token (false for client_credentials,
  /// where renewing means granting again).
  virtual bool uses_refresh_token() const { return true; }

  /// A starting point when nothing is persisted yet (e.g. a configured initial refresh token):
  /// a bundle with a refresh token and no access token. nullopt when there is none.
  virtual std::optional<token_bundle> seed() const { return std::nullopt; }

  /// Call before sending a command whose outcome await_command() will wait for: subscribes to
  /// acknowledgements (acks are never replayed, so the subscription must come first). Returns a
  /// value to hand to await_command(). Never fails: waiting falls back to polling.
  virtual awaitable<std::uint64_t> prepare_command(steady_clock::time_point deadline);
  /// Waits for command `id` to finish. errc::timeout at `deadline`; errc::unavailable when this
  /// provider has no asynchronous commands.
  virtual awaitable<result<command_result>> await_command(std::string id, std::uint64_t prepared,
                                                          steady_clock::time_point deadline);

  /// Frees background resources (WebSocket channels); called before the provider is dropped.
  virtual void stop() {}
};

}  // namespace tokenbroker::broker
