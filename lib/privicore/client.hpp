// Typed coroutine client for every Privicore endpoint the broker speaks (PROTOCOL.md §5).
//
// Expected failures are values: transport/timeout/tls from http::client, errc::http_status with
// the status for a non-2xx answer (401 too: callers switch on `status`), errc::malformed for an
// answer that cannot be understood. Messages name the call ("POST /profile/authenticate: ...")
// and never contain a secret: anything sent as a secret is scrubbed from the server's words.
// Reference arguments must stay valid until the returned awaitable completes (co_await directly).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "http/client.hpp"
#include "http/url.hpp"
#include "privicore/types.hpp"

namespace tokenbroker::privicore {

/// How /request-status/{id} is asked: OFF says GET, PRB says POST (§5.2, §7.1 #10).
enum class status_method { automatic, get, post };

class client {
 public:
  /// Calls go to `api_url` (its path is a base: "https://h:9009/base" → "/base/health"); each
  /// whole exchange must finish within `timeout`. `http` must outlive this client.
  client(http::client& http, http::url api_url, std::chrono::milliseconds timeout,
         status_method method = status_method::automatic);

  /// GET /health: the server's status text, "" when it gave none (§5.1).
  awaitable<result<std::string>> health();

  /// POST /profile/authenticate: a profile token for `username` (§5.3); 401 = refused.
  awaitable<result<profile_token>> authenticate(std::string_view username,
                                                const secret& password);

  /// POST /profile/authorization-token/expiry: when `profile` expires (§5.4).
  awaitable<result<sys_seconds>> token_expiry(const secret& profile);

  /// POST /profile/reauthorize-authorization-token: a new token for `ttl`, or the command id of
  /// an asynchronous reauthorization (then ask token_expiry once it is done) (§5.5).
  awaitable<result<reauthorize_outcome>> reauthorize(const secret& profile,
                                                     std::chrono::seconds ttl);

  /// POST /profile/revoke-authorization-token: `profile` is dead once this succeeds (§5.6).
  awaitable<result<void>> revoke(const secret& profile);

  /// POST /profile/oauth-application-register: the command id, which is also the application
  /// id (§5.7, §7.4 #33). Wait for the command before retrieve_configuration.
  awaitable<result<std::string>> register_application(const secret& profile,
                                                      std::string_view name,
                                                      std::string_view redirect_uri,
                                                      const std::vector<std::string>& scopes);

  /// POST /profile/retrieve-oauth-application-configuration (§5.8). SINGLE USE: the caller gets
  /// the client secret exactly once and must store it durably before doing anything else; a
  /// second call fails (422 oauth.already_retrieved, said plainly in the message) and the only
  /// fix is registering a new application. Never retry this call blindly.
  awaitable<result<app_config>> retrieve_configuration(const secret& profile,
                                                       std::string_view application_id);

  /// GET /profile/oauth-application-request-authorization-code: the request id to wait for and
  /// then pass to retrieve_authorization_code with the same `nonce` (§5.9).
  awaitable<result<std::string>> request_authorization_code(const secret& profile,
                                                            std::string_view client_id,
                                                            std::string_view nonce,
                                                            const std::vector<std::string>& scopes);

  /// POST /oauth-application/retrieve-authorization-code: the single-use code (§5.10).
  awaitable<result<authorization_code>> retrieve_authorization_code(
      const client_credentials& creds, std::string_view request_id, std::string_view nonce);

  /// POST /oauth-application/obtain-access-token: exchanges the code for tokens (§5.11).
  awaitable<result<token_set>> obtain_access_token(const client_credentials& creds,
                                                   const secret& code);

  /// POST /oauth-application/refresh-access-token: new tokens, or accepted without a body (no
  /// new token known) (§5.12). 401 means a new grant is needed (§6 step 14).
  awaitable<result<refresh_outcome>> refresh_access_token(const secret& access_token,
                                                          const secret& refresh_token);

  /// GET /profile/retrieve-oauth-application-list (§5.13).
  awaitable<result<std::vector<application_summary>>> list_applications(const secret& profile);

  /// The application scope as raw JSON. Endpoint UNKNOWN (§5.14): POST
  /// /oauth-application/retrieve-oauth-application-scope with A, and on 404/405 GET of it.
  awaitable<result<nlohmann::json>> application_scope(
      const secret& access_token, std::optional<std::string_view> application_id = std::nullopt);

  /// /request-status/{id}, with P when `profile` is given (§5.2). In automatic mode GET is tried
  /// first and, on 404/405, POST once; the method that answered is remembered. 404 from the
  /// right method (or both) → errc::not_found.
  awaitable<result<command_outcome>> command_status(std::string_view id, const secret* profile);

  /// The status method in use: the configured one, or what automatic mode found (automatic
  /// while nothing has answered yet).
  status_method detected_status_method() const noexcept;
  const http::url& api_url() const noexcept { return api_; }

 private:
  struct call;
  awaitable<result<http::response>> exchange(call& c);
  awaitable<result<http::response>> status_exchange(http::verb method, std::string_view id,
                                                    const secret* profile);

  http::client& http_;
  http::url api_;
  std::chrono::milliseconds timeout_;
  status_method method_;
  std::optional<http::verb> found_status_method_;
};

}  // namespace tokenbroker::privicore
