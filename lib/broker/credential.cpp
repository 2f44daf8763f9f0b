#include "broker/credential.hpp"

#include "core/log.hpp"
#include "core/spawn.hpp"

namespace tokenbroker::broker {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

double seconds_since(steady_clock::time_point t0) {
  return std::chrono::duration<double>(steady_clock::now() - t0).count();
}

// Tokens are handed out only with this much validity left, so a token is never expired by the
// time a caller uses it: min(1 s, lifetime / 8).
milliseconds safety_margin(const token_bundle& b) {
  auto lifetime = duration_cast<milliseconds>(b.expires_at - b.obtained_at);
  return std::clamp(lifetime / 8, milliseconds{50}, milliseconds{1000});
}

}  // namespace

std::string_view to_string(cred_state s) noexcept {
  switch (s) {
    case cred_state::fresh: return "fresh";
    case cred_state::refreshing: return "refreshing";
    case cred_state::stale: return "stale";
    case cred_state::expired: return "expired";
    case cred_state::needs_grant: return "needs_grant";
    case cred_state::error: return "error";
  }
  return "error";
}

credential::credential(net::any_io_executor ex, credential_options options,
                       std::shared_ptr<provider> p, store::state_store& store,
                       metrics::registry& metrics, std::uint64_t seed)
    : ex_(ex),
      options_(std::move(options)),
      provider_(std::move(p)),
      store_(store),
      metrics_(metrics),
      rng_(seed),
      loop_timer_(ex) {
  metrics_.credential_state(options_.name, to_string(state_));
  if (store_.shared()) metrics_.cluster_role(options_.name, "follower");
}

credential::~credential() { provider_->stop(); }

void credential::start(std::shared_ptr<credential> after) {
  running_ = true;
  spawn_logged(ex_, "credential " + options_.name, run(std::move(after)));
}

void credential::stop() {
  stopped_ = true;
  provider_->stop();
  wake_loop();
  changes_.notify();
}

bool credential::valid_for(milliseconds d) const { return valid_for(d, system_clock::now()); }

bool credential::valid_for(milliseconds d, system_clock::time_point now) const {
  if (!bundle_ || bundle_->access_token.empty() || invalidated_) return false;
  auto need = d + safety_margin(*bundle_);
  // Both clocks must agree: the monotonic anchor survives wall-clock jumps, the wall clock
  // notices time spent suspended (when the monotonic clock stands still).
  return now + need < bundle_->expires_at && steady_clock::now() + need < expires_steady_;
}

bool credential::ready() const { return valid_for(milliseconds{0}); }

credential::action credential::next_action() const {
  if (fatal_ || stopped_) return action::idle;
  if (prefer_grant_ && provider_->can_grant()) return action::grant;
  bool refresh_expired = bundle_ && bundle_->refresh_expires_at &&
                         *bundle_->refresh_expires_at <= system_clock::now();
  if (bundle_ && bundle_->has_refresh_token() && !grant_dead_ && !refresh_expired &&
      provider_->uses_refresh_token())
    return action::refresh;
  if (provider_->can_grant()) return action::grant;
  return action::idle;
}

void credential::update_state() {
  cred_state s;
  bool valid = valid_for(milliseconds{0});
  if (fatal_) s = cred_state::error;
  else if (in_flight_ || remote_in_flight_) s = cred_state::refreshing;
  else if (next_action() == action::idle) s = cred_state::needs_grant;
  else if (!valid) s = cred_state::expired;
  else if (backoff_.attempts() > 0 || steady_clock::now() >= next_attempt_) s = cred_state::stale;
  else s = cred_state::fresh;
  if (s != state_) {
    log::debug("credential {}: {} -> {}", options_.name, to_string(state_), to_string(s));
    state_ = s;
    metrics_.credential_state(options_.name, to_string(s));
  }
}

void credential::schedule_next() {
  if (!bundle_) {
    next_attempt_ = steady_clock::now();
    return;
  }
  auto now = steady_clock::now();
  auto lifetime = duration_cast<milliseconds>(bundle_->expires_at - bundle_->obtained_at);
  auto remaining = duration_cast<milliseconds>(expires_steady_ - now);
  auto delay = refresh_delay(options_.policy, lifetime, remaining, rng_);
  if (store_.shared() && !holder_) {
    // A follower leaves the refresh to the holder, whose new tokens arrive through the watch; it
    // steps in only halfway through the margin, when the holder has evidently not refreshed.
    auto latest = std::max(remaining - effective_margin(options_.policy, lifetime), milliseconds{0});
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    auto grace = static_cast<double>((remaining - latest).count()) / 2.0 * jitter(rng_);
    delay = std::max(delay, latest + milliseconds{static_cast<milliseconds::rep>(grace)});
  }
  next_attempt_ = now + delay;
}

void credential::wake_loop() { loop_timer_.cancel(); }

void credential::reconfigure(schedule_policy policy, std::string provider_name,
                             std::shared_ptr<provider> p, bool new_grant) {
  if (pending_) {
    // Two reloads before the loop got to the first: the later settings win, and a grant change
    // or provider from the first is not forgotten.
    new_grant = new_grant || pending_->new_grant;
    if (!p) p = std::move(pending_->replacement);
  }
  pending_ = pending_change{policy, std::move(provider_name), std::move(p), new_grant};
  wake_loop();
}

awaitable<void> credential::do_reconfigure() {
  // A login runs outside this loop; let it end first.
  while (in_flight_ && !stopped_)
    co_await changes_.wait(steady_clock::now() + std::chrono::minutes{1});
  if (stopped_) co_return;
  auto change = std::move(*pending_);
  pending_.reset();
  bool margin_changed = change.policy.margin != options_.policy.margin;
  bool grant_was_dead = grant_dead_;
  bool replaced = change.replacement != nullptr;
  options_.policy = change.policy;
  options_.provider_name = std::move(change.provider_name);
  if (replaced) {
    provider_ = std::move(change.replacement);
    fatal_ = grant_dead_ = prefer_grant_ = false;
    backoff_.reset();
  }
  auto now = steady_clock::now();
  if (change.new_grant) {
    if (auto erased = co_await store_.erase(options_.name); !erased)
      log::error("credential {}: cannot erase the previous grant's saved state: {}", options_.name,
                 erased.error().message);
    bundle_.reset();
    invalidated_ = false;
    last_error_.clear();
    if (auto seeded = provider_->seed()) bundle_ = std::move(*seeded);
    expires_steady_ = now;
    next_attempt_ = now;
    log::info("credential {}: grant settings changed; the previous grant's tokens are dropped",
              options_.name);
  } else if (replaced) {
    // A configured refresh token is a starting point: used when no usable grant is held.
    auto seeded = provider_->seed();
    if (seeded && !bundle_) {
      bundle_ = std::move(*seeded);
      expires_steady_ = now;
    } else if (seeded && grant_was_dead && !(seeded->refresh_token == bundle_->refresh_token)) {
      bundle_->refresh_token = seeded->refresh_token;  // the access token stays while valid
      bundle_->refresh_expires_at.reset();
      log::info("credential {}: the refused refresh token is replaced by the configured one",
                options_.name);
    }
    // Settings were perhaps changed to fix what failed: try again now.
    if (!last_attempt_ok_)
      next_attempt_ = now;
    else if (margin_changed)
      schedule_next();
    log::info("credential {}: new settings applied; tokens kept", options_.name);
  } else if (margin_changed && backoff_.attempts() == 0) {
    schedule_next();
    log::info("credential {}: new refresh_margin applied", options_.name);
  }
  update_state();
  changes_.notify();
}

std::chrono::seconds credential::retry_after_hint() const {
  auto wait = duration_cast<std::chrono::seconds>(next_attempt_ - steady_clock::now());
  return std::max(wait + std::chrono::seconds{1}, std::chrono::seconds{1});
}

awaitable<void> credential::do_load() {
  auto r = co_await store_.load(options_.name);
  if (!r && store_.shared() && r.error().code != errc::malformed) {
    // etcd unreachable: the tokens are read again under the lock before any refresh or grant.
    last_error_ = "cannot read the shared tokens yet: " + r.error().describe();
    log::warn("credential {}: {}", options_.name, last_error_);
  } else if (!r) {
    last_error_ = "saved state unusable: " + r.error().message;
    log::error("credential {}: {}", options_.name, last_error_);
  } else if (*r) {
    bundle_ = std::move(**r);
    expires_steady_ = steady_clock::now() + (bundle_->expires_at - system_clock::now());
    log::info("credential {}: restored saved token {}, valid until {}", options_.name,
              bundle_->access_token, format_timestamp(bundle_->expires_at));
    if (!bundle_->access_token.empty()) metrics_.token_expiry(
        options_.name, static_cast<double>(bundle_->expires_at.time_since_epoch().count()));
  } else if (auto seeded = provider_->seed()) {
    bundle_ = std::move(*seeded);
    expires_steady_ = steady_clock::now();
  }
  schedule_next();
  update_state();
}

awaitable<void> credential::run(std::shared_ptr<credential> after) {
  // The same name's previous credential may still be finishing an attempt (and saving its
  // token): load only after it is done. Bounded, as a loop ended by an exception never says so.
  if (after && after->running()) {
    net::steady_timer pause(ex_);
    auto until = steady_clock::now() + std::chrono::minutes{2};
    while (after->running() && !stopped_ && steady_clock::now() < until) {
      pause.expires_after(milliseconds{50});
      co_await pause.async_wait(use_tuple);
    }
  }
  after.reset();
  if (stopped_) {
    running_ = false;
    co_return;
  }
  co_await do_load();
  while (!stopped_) {
    if (pending_) {
      co_await do_reconfigure();
      continue;
    }
    auto now = steady_clock::now();
    auto a = next_action();
    if (a != action::idle && next_attempt_ <= now) {
      co_await do_attempt(a);
      continue;
    }
    auto until = now + options_.check_interval;
    if (a != action::idle) until = std::min(until, next_attempt_);
    if (valid_for(milliseconds{0})) until = std::min(until, expires_steady_);
    auto sys_before = system_clock::now();
    loop_timer_.expires_at(until);
    co_await loop_timer_.async_wait(use_tuple);
    // A suspend (the monotonic clock stood still) or a wall-clock change shows as a gap between
    // the two clocks; re-anchor the expiry on the earlier of the two readings.
    auto drift = clock_drift(steady_clock::now() - now, system_clock::now() - sys_before);
    if (bundle_ && clocks_jumped(drift)) {
      log::warn("credential {}: wall clock moved {} ms against the monotonic clock (suspend or "
                "clock change); re-checking the token",
                options_.name, drift.count());
      expires_steady_ = reanchor(expires_steady_, steady_clock::now(), system_clock::now(),
                                 bundle_->expires_at);
      if (backoff_.attempts() == 0 && !in_flight_) schedule_next();
    }
    update_state();
    changes_.notify();  // expiry or state changes matter to waiters
  }
  running_ = false;
}

awaitable<void> credential::do_attempt(action a) {
  in_flight_ = true;
  update_state();
  if (!co_await take_lock()) {
    in_flight_ = false;
    update_state();
    changes_.notify();
    co_return;
  }
  if (!co_await catch_up()) {
    co_await store_.unlock(options_.name);
    holding_lock_ = false;
    in_flight_ = false;
    update_state();
    changes_.notify();
    co_return;
  }
  a = next_action();
  auto t0 = steady_clock::now();
  if (a == action::idle) {
    // nothing left to do after catching up
  } else if (a == action::refresh) {
    auto r = co_await provider_->refresh(*bundle_);
    if (!r) {
      on_failure(r.error(), a, seconds_since(t0));
    } else if (*r) {
      co_await adopt(std::move(**r), "success", seconds_since(t0));
    } else {
      // Privicore's 202 without a body (PROTOCOL.md §5.12): no new token is known. Keep serving
      // the current one while valid; re-grant when we can, else retry the refresh later.
      metrics_.refresh(options_.name, "accepted_without_token", seconds_since(t0));
      last_error_ = "refresh accepted (202) without a new token";
      last_attempt_ok_ = false;
      if (provider_->can_grant()) {
        log::warn("credential {}: refresh answered 202 without a token; re-granting",
                  options_.name);
        prefer_grant_ = true;
        next_attempt_ = steady_clock::now();
      } else {
        auto delay = backoff_.next(rng_);
        log::warn("credential {}: refresh answered 202 without a token and no login is "
                  "configured; retrying the refresh in {} ms",
                  options_.name, delay.count());
        next_attempt_ = steady_clock::now() + delay;
      }
    }
  } else {
    auto r = co_await provider_->grant();
    if (r) co_await adopt(std::move(*r), "grant", seconds_since(t0));
    else on_failure(r.error(), a, seconds_since(t0));
  }
  co_await store_.unlock(options_.name);
  holding_lock_ = false;
  in_flight_ = false;
  ++generation_;
  update_state();
  changes_.notify();
}

awaitable<void> credential::adopt(token_bundle b, std::string_view result, double seconds) {
  // A refresh answer without a refresh token keeps the current one (PROTOCOL.md §5.12, RFC 6749
  // §6): only a grant starts from scratch.
  if (!b.has_refresh_token() && bundle_ && result == "success") {
    b.refresh_token = bundle_->refresh_token;
    if (!b.refresh_expires_at) b.refresh_expires_at = bundle_->refresh_expires_at;
  }
  // Persist before anyone can see the new token: a crash after this point loses nothing.
  auto saved = co_await save_durably(b);
  if (!saved) {
    log::error("credential {}: cannot persist the new token: {}", options_.name,
               saved.error().message);
  }
  expires_steady_ = steady_clock::now() + (b.expires_at - system_clock::now());
  bundle_ = std::move(b);
  invalidated_ = grant_dead_ = fatal_ = prefer_grant_ = false;
  last_attempt_ok_ = true;
  backoff_.reset();
  last_refresh_at_ = now_seconds();
  last_error_ = saved ? std::string{} : "new token not persisted: " + saved.error().message;
  metrics_.refresh(options_.name, result, seconds);
  if (store_.shared() && saved && !holder_) {
    metrics_.lock_handover(options_.name);
    ++handovers_;
    log::info("credential {}: this replica took over refreshing the shared tokens", options_.name);
  }
  if (saved) set_holder(true);
  metrics_.token_expiry(options_.name,
                        static_cast<double>(bundle_->expires_at.time_since_epoch().count()));
  schedule_next();
  log::info("credential {}: {} -> token {} valid until {}", options_.name, result,
            bundle_->access_token, format_timestamp(bundle_->expires_at));
  if (!valid_for(milliseconds{0})) {
    // Dead on arrival (the provider's clock is behind ours, or it issues zero lifetimes):
    // back off instead of refreshing in a tight loop.
    auto delay = backoff_.next(rng_);
    next_attempt_ = steady_clock::now() + delay;
    last_error_ = "the provider issued a token that is already expired (clock skew?)";
    log::warn("credential {}: {}; next attempt in {} ms", options_.name, last_error_,
              delay.count());
  }
}

void credential::on_failure(const error& e, action a, double seconds) {
  last_error_ = e.describe();
  last_attempt_ok_ = false;
  auto cls = classify(e);
  auto now = steady_clock::now();
  if (cls == failure_class::grant_dead && a == action::refresh) {
    metrics_.refresh(options_.name, "refresh_token_rejected", seconds);
    grant_dead_ = true;
    next_attempt_ = now;
    log::warn("credential {}: refresh token refused ({}); {}", options_.name, e.describe(),
              provider_->can_grant() ? "re-granting" : "needs a new grant (tokenbrokerctl login)");
    return;
  }
  if (cls == failure_class::retry) {
    metrics_.refresh(options_.name, "retry", seconds);
    auto delay = backoff_.next(rng_, duration_cast<milliseconds>(e.retry_after));
    next_attempt_ = now + delay;
    log::warn("credential {}: {} failed ({}); retrying in {} ms", options_.name,
              a == action::refresh ? "refresh" : "grant", e.describe(), delay.count());
    return;
  }
  metrics_.refresh(options_.name, "error", seconds);
  fatal_ = true;
  log::error("credential {}: {} failed ({}); not retrying until forced or reconfigured",
             options_.name, a == action::refresh ? "refresh" : "grant", e.describe());
}

std::optional<served_token> credential::try_token(std::chrono::seconds min_valid) {
  auto t = peek_token(min_valid, system_clock::now());
  if (!t) return std::nullopt;
  return served_token{t->access_token, t->token_type, t->scope, t->expires_at};
}

std::optional<token_view> credential::peek_token(std::chrono::seconds min_valid,
                                                 system_clock::time_point now) {
  if (!valid_for(min_valid, now)) return std::nullopt;
  metrics_.token_request(options_.name, "ok");
  return token_view{bundle_->access_token, bundle_->token_type, bundle_->scope,
                    bundle_->expires_at};
}

awaitable<result<served_token>> credential::get_token(std::chrono::seconds min_valid,
                                                      milliseconds wait) {
  if (bundle_ && !bundle_->access_token.empty() &&
      bundle_->expires_at - bundle_->obtained_at <= min_valid) {
    metrics_.token_request(options_.name, "bad_request");
    co_return make_error(errc::invalid_argument,
                         "min_valid exceeds the lifetime of this provider's tokens");
  }
  auto deadline = steady_clock::now() + wait;
  for (bool waited = false;; waited = true) {
    if (auto t = try_token(min_valid)) co_return std::move(*t);
    auto a = next_action();
    if (stopped_) {
      metrics_.token_request(options_.name, "unavailable");
      auto e = make_error(errc::unavailable, "credential " + options_.name +
                                                 " is stopped (removed by a reload, or the "
                                                 "broker is stopping)");
      e.retry_after = std::chrono::seconds{1};
      co_return e;
    }
    bool busy = in_flight_ || remote_in_flight_;
    bool hopeless = (!busy && a == action::idle) ||
                    (waited && !busy && steady_clock::now() < next_attempt_) ||
                    changes_.waiting() >= options_.max_waiters;
    if (!hopeless && !busy && backoff_.attempts() == 0 &&
        next_attempt_ > steady_clock::now()) {
      next_attempt_ = steady_clock::now();  // a caller needs a fresher token: refresh now
      wake_loop();
    }
    if (hopeless || !co_await changes_.wait(deadline)) {
      metrics_.token_request(options_.name, "unavailable");
      auto e = make_error(errc::unavailable,
                          state_ == cred_state::needs_grant
                              ? "credential needs a new grant: run tokenbrokerctl login " +
                                    options_.name
                              : "no valid token" +
                                    (last_error_.empty() ? "" : " (last error: " + last_error_ + ")"));
      e.retry_after = retry_after_hint();
      co_return e;
    }
  }
}

awaitable<result<void>> credential::force_refresh(milliseconds wait) {
  fatal_ = false;
  if (next_action() == action::idle) {
    fatal_ = state_ == cred_state::error;
    co_return make_error(errc::unavailable, "credential needs a new grant: run tokenbrokerctl "
                                            "login " + options_.name);
  }
  auto gen = generation_;
  if (!in_flight_) {
    backoff_.reset();
    next_attempt_ = steady_clock::now();
    wake_loop();
  }
  auto deadline = steady_clock::now() + wait;
  while (generation_ == gen) {
    if (!co_await changes_.wait(deadline) && generation_ == gen)
      co_return make_error(errc::timeout, "refresh still in flight");
  }
  if (!last_attempt_ok_) co_return make_error(errc::unavailable, last_error_);
  co_return result<void>{};
}

awaitable<result<void>> credential::login(const login_input& input) {
  // Wait for an attempt in flight instead of failing: a browser login's code is single-use.
  auto deadline = steady_clock::now() + std::chrono::seconds{60};
  while (in_flight_) {
    bool changed = co_await changes_.wait(deadline);
    if (!changed && in_flight_)
      co_return make_error(errc::unavailable, "a refresh is in flight; try again");
  }
  in_flight_ = true;
  update_state();
  for (;;) {
    bool locked = co_await take_lock();
    if (locked) break;
    if (!remote_in_flight_ || steady_clock::now() >= deadline) {
      in_flight_ = false;
      update_state();
      changes_.notify();
      co_return make_error(errc::unavailable,
                           remote_in_flight_ ? "another replica is refreshing; try again"
                                             : last_error_);
    }
    net::steady_timer t(ex_);
    t.expires_after(options_.lock_poll);
    co_await t.async_wait(use_tuple);
  }
  auto t0 = steady_clock::now();
  auto r = co_await provider_->login(input);
  if (r) {
    co_await adopt(std::move(*r), "login", seconds_since(t0));
    co_await provider_->login_adopted();  // only now: the new grant is saved
  } else {
    last_error_ = "login failed: " + r.error().describe();
    metrics_.refresh(options_.name, "login_failed", seconds_since(t0));
  }
  co_await store_.unlock(options_.name);
  holding_lock_ = false;
  in_flight_ = false;
  ++generation_;
  update_state();
  changes_.notify();
  wake_loop();
  if (!r) co_return r.error();
  co_return result<void>{};
}

void credential::invalidate(const secret& token) {
  if (!bundle_ || invalidated_ || !(bundle_->access_token == token)) return;
  log::warn("credential {}: upstream refused token {}; refreshing", options_.name, token);
  invalidated_ = true;
  if (!in_flight_ && backoff_.attempts() == 0) next_attempt_ = steady_clock::now();
  wake_loop();
  update_state();
}

credential_status credential::status() const {
  credential_status s;
  s.name = options_.name;
  s.provider = options_.provider_name;
  s.state = state_;
  if (bundle_ && !bundle_->access_token.empty()) s.expires_at = bundle_->expires_at;
  if (next_action() != action::idle) {
    auto delta = duration_cast<std::chrono::seconds>(next_attempt_ - steady_clock::now());
    s.refresh_at = now_seconds() + std::max(delta, std::chrono::seconds{0});
  }
  s.last_refresh_at = last_refresh_at_;
  s.last_error = last_error_;
  if (store_.shared()) {
    s.cluster_role = holder_ ? "holder" : "follower";
    s.lock_handovers = handovers_;
  }
  return s;
}

}  // namespace tokenbroker::broker
