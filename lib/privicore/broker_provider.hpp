// The broker's provider for `provider = "privicore"` credentials: refresh with the refresh token
// (PROTOCOL.md §6 step 14) and grant through a profile session (§6 steps 7–12).
#pragma once

#include <memory>
#include <optional>

#include "broker/provider.hpp"
#include "config/config.hpp"
#include "privicore/ack_channel.hpp"
#include "privicore/client.hpp"

namespace tokenbroker::privicore {

class broker_provider final : public broker::provider {
 public:
  /// `http` must outlive the provider.
  broker_provider(net::any_io_executor ex, const config::credential_config& cfg,
                  http::client& http);
  ~broker_provider() override;

  awaitable<result<std::optional<broker::token_bundle>>> refresh(
      const broker::token_bundle& current) override;
  awaitable<result<broker::token_bundle>> grant() override;
  bool can_grant() const override { return !username_.empty() && !password_.empty(); }
  awaitable<result<broker::token_bundle>> login(const broker::login_input& input) override;
  awaitable<void> login_adopted() override;
  awaitable<std::uint64_t> prepare_command(steady_clock::time_point deadline) override;
  awaitable<result<broker::command_result>> await_command(
      std::string id, std::uint64_t prepared, steady_clock::time_point deadline) override;
  void stop() override;

 private:
  /// The stored login's profile token, authenticating when none is valid (or `renew`).
  awaitable<result<secret>> do_session(bool renew);
  /// §6 steps 8–12 as `profile`, acks through the channel when a ws_url is configured.
  awaitable<result<broker::token_bundle>> do_grant(const secret& profile);
  ack_channel* channel_for(const secret& profile);
  awaitable<void> revoke_login_session(const secret& profile);
  broker::token_bundle to_bundle(token_set ts, std::string grant_id) const;

  net::any_io_executor ex_;
  std::string name_;
  http::client& http_;
  client api_;
  std::optional<http::url> ws_url_;
  client_credentials creds_;
  std::string username_;
  secret password_;
  std::vector<std::string> scopes_;
  std::chrono::milliseconds timeout_;
  std::optional<profile_token> session_;
  std::optional<secret> login_session_;  // a login's own session, revoked in login_adopted()
  std::shared_ptr<ack_channel> channel_;
  std::string channel_token_fp_;  // fingerprint of the token the channel joins with
};

}  // namespace tokenbroker::privicore
