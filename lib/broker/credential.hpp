// One credential: holds its token, refreshes it ahead of expiry from a single loop (so any number
// of callers cause at most one refresh or grant at a time), and answers callers.
#pragma once

#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "broker/provider.hpp"
#include "broker/schedule.hpp"
#include "broker/token.hpp"
#include "core/asio.hpp"
#include "core/backoff.hpp"
#include "core/change_signal.hpp"
#include "core/error.hpp"
#include "metrics/metrics.hpp"
#include "store/store.hpp"

namespace tokenbroker::broker {

enum class cred_state { fresh, refreshing, stale, expired, needs_grant, error };
std::string_view to_string(cred_state s) noexcept;

/// A token as handed to a caller.
struct served_token {
  secret access_token;
  std::string token_type;
  std::string scope;
  sys_seconds expires_at;
};

/// A served token's fields, not copied: valid until the credential next changes (a refresh,
/// an adoption, an invalidation), so to be used before the caller's next wait.
struct token_view {
  const secret& access_token;
  const std::string& token_type;
  const std::string& scope;
  sys_seconds expires_at;
  token_view(const secret& a, const std::string& type, const std::string& sc, sys_seconds exp)
      : access_token(a), token_type(type), scope(sc), expires_at(exp) {}
  token_view(const served_token& t)  // NOLINT: a served token views as itself
      : token_view(t.access_token, t.token_type, t.scope, t.expires_at) {}
};

/// What /v1/credentials shows; never a secret.
struct credential_status {
  std::string name;
  std::string provider;
  cred_state state = cred_state::needs_grant;
  std::optional<sys_seconds> expires_at;
  std::optional<sys_seconds> refresh_at;
  std::optional<sys_seconds> last_refresh_at;
  std::string last_error;
  std::string cluster_role;  // "holder" or "follower" when the store is shared, else empty
  std::uint64_t lock_handovers = 0;  // shared store: times this replica took refreshing over
};

struct credential_options {
  std::string name;
  std::string provider_name;
  schedule_policy policy;
  std::size_t max_waiters = 16384;
  std::chrono::milliseconds check_interval{std::chrono::seconds{15}};  // notices clock jumps
  std::chrono::milliseconds lock_poll{500};  // shared store: re-ask a lock another replica holds
};

class credential {
 public:
  credential(net::any_io_executor ex, credential_options options, std::shared_ptr<provider> p,
             store::state_store& store, metrics::registry& metrics, std::uint64_t seed);
  ~credential();

  /// Loads persisted state and starts the refresh loop; with `after` (a stopped credential of
  /// the same name), only once that one's loop has ended, so one name never has two loops.
  void start(std::shared_ptr<credential> after = nullptr);
  /// Stops the loop and wakes every waiter (they get errc::unavailable). An attempt in flight
  /// still finishes and persists its token.
  void stop();
  /// True from start() until the loop has ended.
  bool running() const noexcept { return running_; }

  /// Applies new settings between attempts: a refresh, grant or login in flight finishes first,
  /// so a credential never runs two at once. `p` (null: keep the current one) replaces the
  /// provider and clears a fatal error or back-off. `new_grant`: the held tokens belong to a
  /// grant these settings no longer describe; they and the saved state are dropped, and the
  /// credential grants again (or waits in needs_grant).
  void reconfigure(schedule_policy policy, std::string provider_name, std::shared_ptr<provider> p,
                   bool new_grant);

  /// A token valid for at least `min_valid` more. A caller holding a valid token never waits;
  /// otherwise it waits, at most `wait`, for the refresh or grant in flight. Errors:
  /// errc::unavailable (with retry_after) when no valid token can be had in time,
  /// errc::invalid_argument when `min_valid` exceeds what the provider issues.
  awaitable<result<served_token>> get_token(std::chrono::seconds min_valid,
                                            std::chrono::milliseconds wait);
  /// get_token's answer when it needs no wait: the token if one valid for `min_valid` more is
  /// held now (counted as served), nothing otherwise (then get_token decides). The local API's
  /// fast path: no coroutine frame for the common case.
  std::optional<served_token> try_token(std::chrono::seconds min_valid);
  /// try_token without copying the token, judged at the caller's reading `now` of the wall
  /// clock (the local API's fast path reads it once per request).
  std::optional<token_view> peek_token(std::chrono::seconds min_valid,
                                       std::chrono::system_clock::time_point now);
  /// A caller's rendering of the token (the local API's answer body), kept with the credential
  /// so that it goes when the credential does. What it was made from is kept beside it: the
  /// caller compares before reusing it (api.cpp), so no change of token can be missed.
  struct rendering {
    secret token;
    std::string token_type;
    std::string scope;
    sys_seconds expires_at{};
    sys_seconds at{};
    secret text;
    bool made_from(const token_view& t, sys_seconds now) const {
      return at == now && expires_at == t.expires_at && token == t.access_token &&
             token_type == t.token_type && scope == t.scope;
    }
  };
  rendering& rendering_memo() noexcept { return rendering_; }
  /// Forces one refresh (or joins the one in flight) and waits at most `wait` for its outcome.
  awaitable<result<void>> force_refresh(std::chrono::milliseconds wait);
  /// Runs an interactive grant (tokenbrokerctl login), after any refresh in flight (waiting at
  /// most a minute); on success the credential lives on the new grant's refresh token.
  awaitable<result<void>> login(const login_input& input);
  /// The upstream refused `token`: stop serving it (if still current) and refresh at once.
  void invalidate(const secret& token);
  /// Shared store: tokens another replica saved. Adopted unless they are the ones held already.
  void adopt_shared(const token_bundle& b);

  credential_status status() const;
  /// True while a token valid right now is held.
  bool ready() const;
  /// True while this replica's own refresh, grant or login is in flight (not another
  /// replica's, which a shared-store credential waits for as "refreshing" too).
  bool attempt_in_flight() const noexcept { return in_flight_; }
  const std::string& name() const noexcept { return options_.name; }
  /// The provider kind status() reports ("privicore", "oauth2"), without building a status.
  const std::string& provider_name() const noexcept { return options_.provider_name; }
  provider& get_provider() noexcept { return *provider_; }
  /// The current provider, kept alive by the caller across waits (a reload may replace it).
  std::shared_ptr<provider> shared_provider() const { return provider_; }

 private:
  enum class action { refresh, grant, idle };

  struct pending_change {
    schedule_policy policy;
    std::string provider_name;
    std::shared_ptr<provider> replacement;  // null: keep the current provider
    bool new_grant = false;
  };

  awaitable<void> run(std::shared_ptr<credential> after);
  awaitable<void> do_reconfigure();
  awaitable<void> do_load();
  awaitable<void> do_attempt(action a);
  awaitable<void> adopt(token_bundle b, std::string_view result, double seconds);
  awaitable<result<void>> save_durably(const token_bundle& b);
  awaitable<bool> take_lock();
  awaitable<bool> catch_up();
  void set_holder(bool holder);
  void on_failure(const error& e, action a, double seconds);
  action next_action() const;
  bool valid_for(std::chrono::milliseconds d) const;
  bool valid_for(std::chrono::milliseconds d, std::chrono::system_clock::time_point now) const;
  void schedule_next();
  void update_state();
  void wake_loop();
  std::chrono::seconds retry_after_hint() const;

  net::any_io_executor ex_;
  credential_options options_;
  std::shared_ptr<provider> provider_;
  store::state_store& store_;
  metrics::registry& metrics_;
  std::mt19937_64 rng_;
  backoff backoff_;
  backoff lock_backoff_{std::chrono::milliseconds{250}, std::chrono::seconds{5}};

  std::optional<token_bundle> bundle_;
  rendering rendering_;
  steady_clock::time_point expires_steady_{};  // expiry anchored on the monotonic clock
  bool invalidated_ = false;                   // current access token refused upstream
  bool grant_dead_ = false;                    // refresh token refused or expired
  bool fatal_ = false;                         // stop retrying until forced
  bool prefer_grant_ = false;                  // a refresh was accepted without a token
  bool last_attempt_ok_ = false;
  bool in_flight_ = false;
  bool remote_in_flight_ = false;  // shared store: another replica holds the refresh lock
  bool holding_lock_ = false;
  bool holder_ = false;  // shared store: this replica refreshed the current tokens
  std::uint64_t handovers_ = 0;  // times this replica took refreshing over (lock_handovers)
  bool stopped_ = false;
  bool running_ = false;
  std::optional<pending_change> pending_;  // reconfigure() waiting for the loop
  cred_state state_ = cred_state::needs_grant;
  steady_clock::time_point next_attempt_{};
  std::optional<sys_seconds> last_refresh_at_;
  std::string last_error_;
  std::uint64_t generation_ = 0;  // bumped when an attempt ends

  net::steady_timer loop_timer_;
  change_signal changes_;  // callers waiting for a token or an attempt's end
};

}  // namespace tokenbroker::broker
