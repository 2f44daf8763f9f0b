// Typed values exchanged with the Privicore API (PROTOCOL.md §5). Every credential is a `secret`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret.hpp"
#include "core/time.hpp"

namespace tokenbroker::privicore {

/// A profile authorization token (header form P, PROTOCOL §2) and when it stops working.
struct profile_token {
  secret token;
  sys_seconds expires_at{};
};

/// Where an asynchronous command stands (PROTOCOL §3): command_status 1, 2 and 3.
enum class command_state { pending, succeeded, rejected };

/// "pending", "succeeded" or "rejected".
std::string_view to_string(command_state s) noexcept;

/// An asynchronous command's state; `body` is the server's status text or rejection reason.
struct command_outcome {
  std::string id;
  command_state state = command_state::pending;
  std::string body;
};

/// An OAuth application's configuration (§5.8). The server hands out `client_secret` only once.
struct app_config {
  std::string application_id;
  std::string client_id;
  secret client_secret;
  std::string redirect_uri;         // empty when the server did not echo it
  std::vector<std::string> scopes;  // empty when the server did not echo them
};

/// What header form C is made of (§2): `Basic base64(client_id:client_secret)`.
struct client_credentials {
  std::string client_id;
  secret client_secret;
};

/// A short-lived, single-use authorization code (§5.10).
struct authorization_code {
  std::string client_id;  // as echoed by the server; empty when not echoed
  std::string nonce;      // as echoed by the server; empty when not echoed
  secret code;
  std::optional<sys_seconds> expires_at;  // nullopt when the server did not say
};

/// An OAuth token issue (§5.11, and §5.12 when the refresh answers 200 with a body).
struct token_set {
  secret access_token;
  secret refresh_token;  // empty: none returned, keep the previous one (§5.12 "Rotation")
  std::string type;      // "bearer" unless the server says otherwise
  std::string scope;     // space-separated when the server sent a list
  sys_seconds expires_at{};
  std::optional<sys_seconds> refresh_expires_at;
  std::string client_id;  // empty when not echoed
};

/// The answer to a refresh (§5.12, §7.3 #18).
struct refresh_outcome {
  /// nullopt: accepted without a body (202, or 200 with an empty body); no new token is known.
  std::optional<token_set> tokens;
};

/// The answer to a reauthorization (§5.5, §7.3 #20): a new token (200) or a command id (202).
struct reauthorize_outcome {
  std::optional<profile_token> token;
  std::optional<std::string> command_id;
};

/// One entry of the OAuth application list (§5.13; the shape is an unverified stub).
struct application_summary {
  std::string application_id;
  std::string name;
  std::string client_id;  // empty when not listed
  std::vector<std::string> scopes;
  std::optional<sys_seconds> created_at;
};

}  // namespace tokenbroker::privicore
