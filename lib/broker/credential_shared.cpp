// What a credential does behind a shared store (etcd, docs/INTERFACE.md "Cluster"): the refresh
// lock, catching up with what other replicas saved, adopting their tokens, and saving new tokens
// while etcd may be unreachable. The rest of the credential is in credential.cpp.
#include "broker/credential.hpp"

#include "core/log.hpp"

namespace tokenbroker::broker {
namespace {

using std::chrono::milliseconds;

}  // namespace

void credential::set_holder(bool holder) {
  if (!store_.shared() || holder == holder_) return;
  holder_ = holder;
  metrics_.cluster_role(options_.name, holder ? "holder" : "follower");
}

// Shared store: takes the credential's refresh lock. False when another replica holds it (its
// tokens will arrive through the watch; the lock is asked again shortly) or etcd cannot be
// reached (asked again with backoff; valid tokens are still served meanwhile).
awaitable<bool> credential::take_lock() {
  auto gen = generation_;
  auto lock = co_await store_.lock(options_.name);
  auto now = steady_clock::now();
  if (generation_ != gen && (!lock || *lock == store::lock_state::busy)) {
    // Another replica's tokens arrived meanwhile and were adopted: nothing to wait for.
    co_return false;
  }
  if (!lock) {
    remote_in_flight_ = false;
    auto delay = lock_backoff_.next(rng_);
    next_attempt_ = now + delay;
    last_error_ = "cluster lock unavailable: " + lock.error().describe();
    log::warn("credential {}: {}; asking again in {} ms", options_.name, last_error_,
              delay.count());
    co_return false;
  }
  lock_backoff_.reset();
  if (*lock == store::lock_state::busy) {
    remote_in_flight_ = true;
    next_attempt_ = now + options_.lock_poll;
    co_return false;
  }
  remote_in_flight_ = false;
  holding_lock_ = true;
  co_return true;
}

// Shared store, lock held: another replica may have saved newer tokens than the watch has
// brought so far. Adopts them; true when the attempt is still needed after that.
awaitable<bool> credential::catch_up() {
  if (!store_.shared()) co_return true;
  auto current = co_await store_.load(options_.name);
  if (!current) {
    log::warn("credential {}: cannot read the shared tokens: {}", options_.name,
              current.error().describe());
    co_return true;
  }
  if (!*current) co_return true;
  bool same = bundle_ && bundle_->access_token == (*current)->access_token &&
              bundle_->refresh_token == (*current)->refresh_token;
  if (!same) {
    holding_lock_ = false;  // adopt_shared ignores updates while the lock is held
    adopt_shared(**current);
    holding_lock_ = true;
  }
  // Still due? Tokens adopted from the watch while the lock was asked for move the next
  // attempt into the future.
  co_return next_action() != action::idle && next_attempt_ <= steady_clock::now();
}

awaitable<result<void>> credential::save_durably(const token_bundle& b) {
  auto r = co_await store_.save(options_.name, b);
  if (r || !store_.shared()) co_return r;
  // Shared store: the provider has rotated the grant, and these tokens exist nowhere else. While
  // etcd is unreachable, keep the lock's claim and retry (etcd renews leases when it comes
  // back); stop only when the fence says another replica took over (errc::refused).
  backoff retry{milliseconds{250}, std::chrono::seconds{5}};
  net::steady_timer timer(ex_);
  while (!r && r.error().code != errc::refused && r.error().code != errc::invalid_argument &&
         !stopped_) {
    auto delay = retry.next(rng_);
    log::warn("credential {}: cannot save the new tokens to the shared store ({}); retrying in "
              "{} ms",
              options_.name, r.error().describe(), delay.count());
    timer.expires_after(delay);
    co_await timer.async_wait(use_tuple);
    r = co_await store_.save(options_.name, b);
  }
  co_return r;
}

void credential::adopt_shared(const token_bundle& b) {
  if (stopped_ || holding_lock_) return;  // under our lock, nobody else can have saved
  if (bundle_ && bundle_->access_token == b.access_token && bundle_->refresh_token == b.refresh_token)
    return;  // what we hold already (our own save, echoed by the watch)
  bundle_ = b;
  expires_steady_ = steady_clock::now() + (b.expires_at - system_clock::now());
  invalidated_ = grant_dead_ = fatal_ = prefer_grant_ = false;
  remote_in_flight_ = false;
  last_attempt_ok_ = true;
  backoff_.reset();
  last_refresh_at_ = now_seconds();
  last_error_.clear();
  set_holder(false);
  if (!b.access_token.empty())
    metrics_.token_expiry(options_.name,
                          static_cast<double>(b.expires_at.time_since_epoch().count()));
  schedule_next();
  log::info("credential {}: adopted token {} from another replica, valid until {}", options_.name,
            b.access_token, format_timestamp(b.expires_at));
  ++generation_;
  update_state();
  changes_.notify();
  wake_loop();
}

}  // namespace tokenbroker::broker
