#include "privicore/grant.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "core/random.hpp"
#include "privicore/command_waiter.hpp"
#include "privicore/parse.hpp"

namespace tokenbroker::privicore {
namespace {

result<void> in_time(steady_clock::time_point deadline, std::string_view step) {
  if (steady_clock::now() < deadline) return {};
  return make_error(errc::timeout, "out of time before " + std::string(step));
}

/// Subscribes before a command is sent (§4.1): the generation its acks will arrive on, or 0 when
/// there is no channel or it did not join in time (the wait then polls).
awaitable<std::uint64_t> subscribe(ack_channel* channel, steady_clock::time_point deadline,
                                   const flow_options& options) {
  if (!channel) co_return 0;
  auto joined = co_await channel->ensure_joined(
      std::min(deadline, steady_clock::now() + options.join_wait));
  if (!joined) {
    log::warn("privicore: acknowledgement channel unavailable, polling instead: {}",
              joined.error().describe());
    co_return 0;
  }
  co_return channel->generation();
}

}  // namespace

awaitable<result<token_set>> run_authorization_grant(client& api, ack_channel* channel,
                                                     const client_credentials& creds,
                                                     const secret& grantor_profile_token,
                                                     std::vector<std::string> scopes,
                                                     steady_clock::time_point deadline,
                                                     flow_options options) {
  // Step 8: fresh, never reused; replayed in step 11 and checked against the echo.
  const std::string nonce = random_base64url(24);
  auto generation = co_await subscribe(channel, deadline, options);

  // Step 9.
  auto request_id = co_await api.request_authorization_code(grantor_profile_token,
                                                            creds.client_id, nonce, scopes);
  if (!request_id) co_return request_id.error();

  // Step 10.
  auto outcome = co_await wait_for_command(api, channel, *request_id, &grantor_profile_token,
                                           deadline, options.poll_interval, generation);
  if (!outcome) co_return outcome.error();
  if (auto ok = require_success(*outcome, "authorization code request " + *request_id); !ok)
    co_return ok.error();

  // Step 11.
  if (auto ok = in_time(deadline, "retrieving the authorization code"); !ok) co_return ok.error();
  auto code = co_await api.retrieve_authorization_code(creds, *request_id, nonce);
  if (!code) co_return code.error();
  if (!code->nonce.empty() && code->nonce != nonce)
    co_return make_error(errc::malformed, "authorization code carries a different nonce");
  if (!code->client_id.empty() && code->client_id != creds.client_id)
    co_return make_error(errc::malformed, "authorization code was issued to another client");

  // Step 12.
  if (auto ok = in_time(deadline, "obtaining the access token"); !ok) co_return ok.error();
  co_return co_await api.obtain_access_token(creds, code->code);
}

awaitable<result<app_config>> register_and_configure(client& api, ack_channel* channel,
                                                     const secret& owner_profile_token,
                                                     std::string name, std::string redirect_uri,
                                                     std::vector<std::string> scopes,
                                                     steady_clock::time_point deadline,
                                                     flow_options options) {
  auto generation = co_await subscribe(channel, deadline, options);

  // Step 4: the command id is the application id (§7.4 #33).
  auto application_id =
      co_await api.register_application(owner_profile_token, name, redirect_uri, scopes);
  if (!application_id) co_return application_id.error();

  // Step 5.
  auto outcome = co_await wait_for_command(api, channel, *application_id, &owner_profile_token,
                                           deadline, options.poll_interval, generation);
  if (!outcome) co_return outcome.error();
  if (auto ok = require_success(*outcome, "registration of application " + *application_id); !ok)
    co_return ok.error();

  // Step 6: single use, so exactly one attempt.
  if (auto ok = in_time(deadline, "retrieving the application configuration"); !ok)
    co_return ok.error();
  auto config = co_await api.retrieve_configuration(owner_profile_token, *application_id);
  if (config)
    log::info("privicore: application {} registered, client id {}", *application_id,
              config->client_id);
  co_return config;
}

}  // namespace tokenbroker::privicore
