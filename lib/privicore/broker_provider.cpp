#include "privicore/broker_provider.hpp"

#include "core/log.hpp"
#include "core/random.hpp"
#include "core/spawn.hpp"
#include "privicore/command_waiter.hpp"
#include "privicore/grant.hpp"
#include "privicore/parse.hpp"

namespace tokenbroker::privicore {
namespace {

status_method to_method(config::status_method m) {
  switch (m) {
    case config::status_method::get: return status_method::get;
    case config::status_method::post: return status_method::post;
    default: return status_method::automatic;
  }
}

bool is_401(const error& e) { return e.code == errc::http_status && e.status == 401; }

}  // namespace

broker_provider::broker_provider(net::any_io_executor ex, const config::credential_config& cfg,
                                 http::client& http)
    : ex_(std::move(ex)),
      name_(cfg.name),
      http_(http),
      api_(http, *cfg.api_url, cfg.timeout, to_method(cfg.privicore_status_method)),
      ws_url_(cfg.ws_url),
      creds_{cfg.client_id, cfg.client_secret},
      username_(cfg.username),
      password_(cfg.password),
      scopes_(cfg.scopes),
      timeout_(cfg.timeout) {}

broker_provider::~broker_provider() { stop(); }

void broker_provider::stop() {
  if (channel_) channel_->stop();
}

broker::token_bundle broker_provider::to_bundle(token_set ts, std::string grant_id) const {
  broker::token_bundle b;
  b.access_token = std::move(ts.access_token);
  b.refresh_token = std::move(ts.refresh_token);
  b.token_type = ts.type.empty() ? "bearer" : ts.type;
  b.scope = ts.scope;
  b.expires_at = ts.expires_at;
  b.obtained_at = now_seconds();
  b.refresh_expires_at = ts.refresh_expires_at;
  b.grant_id = std::move(grant_id);
  return b;
}

ack_channel* broker_provider::channel_for(const secret& profile) {
  if (!ws_url_) return nullptr;  // acks by polling /request-status
  if (!channel_) {
    channel_ = std::make_shared<ack_channel>(http_, *ws_url_, profile);
    channel_token_fp_ = profile.fingerprint();
    // The coroutine keeps the channel alive until run() has returned.
    spawn_logged(ex_, "ack channel " + name_,
                 [ch = channel_]() -> awaitable<void> { co_await ch->run(); });
  } else if (profile.fingerprint() != channel_token_fp_) {
    channel_token_fp_ = profile.fingerprint();
    channel_->set_token(profile);  // re-joins on a fresh connection
  }
  return channel_.get();
}

awaitable<result<secret>> broker_provider::do_session(bool renew) {
  auto margin = std::chrono::seconds{60};
  if (!renew && session_ && session_->expires_at > system_clock::now() + margin)
    co_return session_->token;
  auto r = co_await api_.authenticate(username_, password_);
  if (!r) co_return r.error();
  log::info("credential {}: profile session for {} established (token {}, until {})", name_,
            username_, r->token, format_timestamp(r->expires_at));
  session_ = std::move(*r);
  co_return session_->token;
}

awaitable<result<broker::token_bundle>> broker_provider::do_grant(const secret& profile) {
  auto* ch = channel_for(profile);
  auto deadline = steady_clock::now() + timeout_ * 4;
  auto ts = co_await run_authorization_grant(api_, ch, creds_, profile, scopes_, deadline);
  if (!ts) co_return ts.error();
  co_return to_bundle(std::move(*ts), random_hex(8));
}

awaitable<result<std::optional<broker::token_bundle>>> broker_provider::refresh(
    const broker::token_bundle& current) {
  auto r = co_await api_.refresh_access_token(current.access_token, current.refresh_token);
  if (!r) co_return r.error();
  if (!r->tokens) co_return std::optional<broker::token_bundle>{};
  co_return std::optional<broker::token_bundle>{to_bundle(std::move(*r->tokens), current.grant_id)};
}

awaitable<result<broker::token_bundle>> broker_provider::grant() {
  if (!can_grant())
    co_return make_error(errc::unavailable, "no profile login configured for unattended grants");
  for (int attempt = 0;; ++attempt) {
    auto profile = co_await do_session(attempt > 0);
    if (!profile) co_return profile.error();
    auto r = co_await do_grant(*profile);
    // A 401 mid-session: re-authenticate once and replay (§6 step 19).
    if (!r && is_401(r.error()) && attempt == 0) {
      log::warn("credential {}: grant refused with 401; re-authenticating the profile once",
                name_);
      continue;
    }
    co_return r;
  }
}

awaitable<result<broker::token_bundle>> broker_provider::login(const broker::login_input& input) {
  secret profile = input.profile_token;
  bool own_session = false;
  if (profile.empty()) {
    if (input.username.empty() || input.password.empty())
      co_return make_error(errc::invalid_argument,
                           "give a profile username and password, or a profile token");
    auto r = co_await api_.authenticate(input.username, input.password);
    if (!r) co_return r.error();
    profile = r->token;
    own_session = true;
  }
  auto granted = co_await do_grant(profile);
  if (own_session) {
    // The session existed only for this grant; from now on the broker lives on the refresh
    // token, so the profile token is revoked rather than left valid (PROTOCOL.md §5.6). After a
    // grant only once the credential has saved it (login_adopted): the revoke is a round trip of
    // up to `timeout`, and the new grant must not wait for it in memory alone.
    if (granted) login_session_ = std::move(profile);
    else co_await revoke_login_session(profile);
  }
  co_return granted;
}

awaitable<void> broker_provider::login_adopted() {
  if (!login_session_) co_return;
  secret profile = std::move(*login_session_);
  login_session_.reset();
  co_await revoke_login_session(profile);
}

awaitable<void> broker_provider::revoke_login_session(const secret& profile) {
  if (auto rv = co_await api_.revoke(profile); !rv)
    log::debug("credential {}: revoking the login session failed: {}", name_,
               rv.error().describe());
}

// Commands sent through the proxy are acknowledged on the channel of the profile that granted
// consent (§4.5), which is the stored login's profile. Without a stored login there is no channel
// to join, and waiting polls /request-status (§5.2) without a profile token.
awaitable<std::uint64_t> broker_provider::prepare_command(steady_clock::time_point deadline) {
  if (!ws_url_ || !can_grant()) co_return 0;
  auto profile = co_await do_session(false);
  if (!profile) {
    log::debug("credential {}: no profile session for command acks, polling instead: {}", name_,
               profile.error().describe());
    co_return 0;
  }
  auto* ch = channel_for(*profile);
  auto joined = co_await ch->ensure_joined(deadline);
  if (!joined) co_return 0;
  co_return ch->generation();
}

awaitable<result<broker::command_result>> broker_provider::await_command(
    std::string id, std::uint64_t prepared, steady_clock::time_point deadline) {
  ack_channel* ch = channel_ && channel_->joined() ? channel_.get() : nullptr;
  std::optional<secret> profile;  // a copy: the session may be renewed during the wait
  if (session_) profile = session_->token;
  const secret* p = profile ? &*profile : nullptr;
  auto outcome = co_await wait_for_command(api_, ch, std::move(id), p, deadline,
                                           std::chrono::milliseconds{500}, prepared);
  if (!outcome) co_return outcome.error();
  broker::command_result r;
  r.succeeded = outcome->state == command_state::succeeded;
  r.body = std::move(outcome->body);
  co_return r;
}

}  // namespace tokenbroker::privicore
