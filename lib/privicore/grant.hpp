// The two multi-step Privicore flows of PROTOCOL.md §6, each as one call.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "privicore/ack_channel.hpp"
#include "privicore/client.hpp"
#include "privicore/types.hpp"

namespace tokenbroker::privicore {

struct flow_options {
  std::chrono::milliseconds join_wait{std::chrono::seconds{10}};  // then fall back to polling
  std::chrono::milliseconds poll_interval{500};
};

/// §6 steps 8–12: a fresh nonce, request an authorization code as the grantor (subscribed to
/// `channel` first, if given: it must be joined with `grantor_profile_token`; null = poll), wait
/// for the request's ack, retrieve the code with `creds` (checking the echoed nonce and client
/// id), exchange it for tokens. A rejected request is errc::rejected with the server's reason;
/// errc::timeout once `deadline` passes between steps.
awaitable<result<token_set>> run_authorization_grant(client& api, ack_channel* channel,
                                                     const client_credentials& creds,
                                                     const secret& grantor_profile_token,
                                                     std::vector<std::string> scopes,
                                                     steady_clock::time_point deadline,
                                                     flow_options options = {});

/// §6 steps 4–6: register an application as the owner, wait for the registration's ack, then
/// retrieve its configuration. The client secret in the result exists nowhere else: store it
/// durably before anything else (§5.8, single use). The configuration call is never retried.
awaitable<result<app_config>> register_and_configure(client& api, ack_channel* channel,
                                                     const secret& owner_profile_token,
                                                     std::string name, std::string redirect_uri,
                                                     std::vector<std::string> scopes,
                                                     steady_clock::time_point deadline,
                                                     flow_options options = {});

}  // namespace tokenbroker::privicore
