// The browser half of POST /v1/credentials/{name}/login (INTERFACE.md "Refinements"): for
// credentials whose grant runs in a browser (oauth2 authorization_code).
#pragma once

#include <chrono>
#include <optional>

#include "broker/registry.hpp"
#include "http/beast.hpp"

namespace tokenbroker::app {

/// Handles a login request for `e` when it is a browser login: an empty body or `{}` starts
/// one (202 with the authorization URL; a pending one is replaced), `{"wait": true}` waits at
/// most `max_wait` for its outcome (200 with the credential's status, 400 login_failed, or 202
/// while still pending). nullopt when `e` is not such a credential or the body is something
/// else (an authorization code or refresh token for the classic login path).
awaitable<std::optional<http::response>> handle_browser_login(const broker::entry& e,
                                                              const http::request& req,
                                                              std::chrono::milliseconds max_wait);

}  // namespace tokenbroker::app
