// Pure builders of every Privicore request the broker sends (PROTOCOL.md §5): no I/O, so each
// method, target, header and body is unit-tested byte for byte.
//
// Every builder returns a complete request: method; target under the api URL's base path;
// `Accept: application/json`; the auth header form of PROTOCOL §2; for POST a body with its
// Content-Type and Content-Length. `Host` is left to http::client::send.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret.hpp"
#include "http/beast.hpp"
#include "http/url.hpp"
#include "privicore/types.hpp"

namespace tokenbroker::privicore {

/// Header carrying a raw profile token (form P, §2).
inline constexpr std::string_view profile_header = "X-DPT-AUTHORIZATION";

/// GET /health, no auth (§5.1, §7.1 #9).
http::request build_health(const http::url& api);

/// POST /profile/authenticate, no auth, form `username`, `password` (§5.3).
http::request build_authenticate(const http::url& api, std::string_view username,
                                 const secret& password);

/// POST /profile/authorization-token/expiry, P, empty form (§5.4, §7.1 #11).
http::request build_token_expiry(const http::url& api, const secret& profile);

/// POST /profile/reauthorize-authorization-token, P, form `ttl` in whole seconds (§5.5).
http::request build_reauthorize(const http::url& api, const secret& profile,
                                std::chrono::seconds ttl);

/// POST /profile/revoke-authorization-token, P (the token being revoked), empty form (§5.6).
http::request build_revoke(const http::url& api, const secret& profile);

/// POST /profile/oauth-application-register, P, form `name`, `redirectUri`, `scopes` (one
/// comma-separated field: the PRB/SET evidence of §7.4 #36) (§5.7).
http::request build_register_application(const http::url& api, const secret& profile,
                                         std::string_view name, std::string_view redirect_uri,
                                         const std::vector<std::string>& scopes);

/// POST /profile/retrieve-oauth-application-configuration, P, form `applicationId` (§5.8).
http::request build_retrieve_configuration(const http::url& api, const secret& profile,
                                           std::string_view application_id);

/// GET /profile/oauth-application-request-authorization-code?client_id=…&nonce=…&scope[]=…
/// (one `scope[]` per scope), P of the consenting profile (§5.9).
http::request build_request_authorization_code(const http::url& api, const secret& profile,
                                               std::string_view client_id, std::string_view nonce,
                                               const std::vector<std::string>& scopes);

/// POST /oauth-application/retrieve-authorization-code, C, form `id`, `nonce` (§5.10).
http::request build_retrieve_authorization_code(const http::url& api,
                                                const client_credentials& creds,
                                                std::string_view request_id,
                                                std::string_view nonce);

/// POST /oauth-application/obtain-access-token, C, form `authorization_code` (§5.11).
http::request build_obtain_access_token(const http::url& api, const client_credentials& creds,
                                        const secret& code);

/// POST /oauth-application/refresh-access-token, A = `Basic <raw access token>` (not base64),
/// form `refresh_token` (§5.12, §7.2 #13).
http::request build_refresh_access_token(const http::url& api, const secret& access_token,
                                         const secret& refresh_token);

/// GET /profile/retrieve-oauth-application-list, P (§5.13).
http::request build_list_applications(const http::url& api, const secret& profile);

/// /oauth-application/retrieve-oauth-application-scope with A, by POST (form) or GET (query);
/// `applicationId` is sent only when given. The endpoint is UNKNOWN (§5.14, §7.1 #7): this is
/// PRB's path and header with both methods, since OFF's menu says GET.
http::request build_application_scope(const http::url& api, const secret& access_token,
                                      std::optional<std::string_view> application_id,
                                      http::verb method);

/// /request-status/{id}: GET without a body, or POST with JSON `{}` (PRB); P when `profile` is
/// given. GET vs POST and the auth requirement are UNKNOWN (§5.2, §7.1 #10, §7.2 #16).
http::request build_command_status(const http::url& api, std::string_view command_id,
                                   const secret* profile, http::verb method);

/// `Basic base64(client_id ":" client_secret)` (form C). A secret: it encodes the client secret.
secret basic_credentials(const client_credentials& creds);

}  // namespace tokenbroker::privicore
