#include "broker/schedule.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker::broker;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

TEST_CASE("refresh_lands_at_half_life_within_ten_percent_jitter") {
  schedule_policy p;  // margin 60 s
  std::mt19937_64 rng(11);
  ms lo = 1h, hi = 0ms;
  for (int i = 0; i < 5000; ++i) {
    auto d = refresh_delay(p, 1h, 1h, rng);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo >= 27min);  // 30 min - 10 %
  CHECK(hi <= 33min);  // 30 min + 10 %
  CHECK(lo < 27min + 30s);
  CHECK(hi > 33min - 30s);
}

TEST_CASE("refresh_is_never_later_than_expiry_minus_margin") {
  schedule_policy p;
  p.margin = 10min;
  std::mt19937_64 rng(5);
  // 12 minutes left of a one-hour token: half-life would be 6 min ± 10 %, margin says ≤ 2 min.
  for (int i = 0; i < 1000; ++i) CHECK(refresh_delay(p, 1h, 12min, rng) <= 2min);
}

TEST_CASE("margin_is_capped_at_half_the_lifetime") {
  schedule_policy p;
  p.margin = 10min;
  CHECK(effective_margin(p, 1h) == 10min);
  CHECK(effective_margin(p, 30s) == 15s);
  std::mt19937_64 rng(9);
  // A 30 s token: cap 15 s; the refresh comes at 13.5–15 s, not immediately.
  for (int i = 0; i < 1000; ++i) {
    auto d = refresh_delay(p, 30s, 30s, rng);
    CHECK(d >= 13500ms);
    CHECK(d <= 15s);
  }
}

TEST_CASE("margin_has_a_floor_of_a_few_seconds") {
  schedule_policy p;
  p.margin = 0s;
  CHECK(effective_margin(p, 1h) == 5s);
  std::mt19937_64 rng(2);
  // 8 s left of a 1 h token: the floor keeps the refresh ≥ 5 s before expiry.
  for (int i = 0; i < 1000; ++i) CHECK(refresh_delay(p, 1h, 8s, rng) <= 3s);
}

TEST_CASE("an_expired_or_nearly_expired_token_refreshes_now") {
  schedule_policy p;
  std::mt19937_64 rng(1);
  CHECK(refresh_delay(p, 1h, 0ms, rng) == 0ms);
  CHECK(refresh_delay(p, 1h, -5s, rng) == 0ms);
  CHECK(refresh_delay(p, 1h, 3s, rng) == 0ms);  // inside the 60 s margin
}

TEST_CASE("short_lived_tokens_of_one_second_still_get_a_half_life_schedule") {
  schedule_policy p;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) {
    auto d = refresh_delay(p, 1s, 1s, rng);
    CHECK(d >= 450ms);
    CHECK(d <= 500ms);
  }
}

TEST_CASE("a_suspend_is_seen_as_drift_and_brings_the_expiry_closer") {
  using steady = std::chrono::steady_clock;
  using wall = std::chrono::system_clock;
  // Before the suspend: a token expiring in 10 min, anchored on the monotonic clock.
  steady::time_point s0{std::chrono::hours{100}};
  wall::time_point w0{std::chrono::hours{200000}};
  auto expires_at = w0 + 10min;
  auto anchor = s0 + 10min;
  // The machine sleeps for an hour: the monotonic clock moves 15 s, the wall clock 1 h.
  auto s1 = s0 + 15s;
  auto w1 = w0 + 1h;
  auto drift = clock_drift(s1 - s0, w1 - w0);
  CHECK(clocks_jumped(drift));
  CHECK(drift == 1h - 15s);
  auto re = reanchor(anchor, s1, w1, expires_at);
  CHECK(re < s1);  // the token is already expired: it must not be served
}

TEST_CASE("a_backward_wall_clock_change_never_extends_a_token") {
  using steady = std::chrono::steady_clock;
  using wall = std::chrono::system_clock;
  steady::time_point s0{std::chrono::hours{100}};
  wall::time_point w0{std::chrono::hours{200000}};
  auto expires_at = w0 + 10min;
  auto anchor = s0 + 10min;
  // An hour later by the monotonic clock the wall clock was set back 30 min.
  auto s1 = s0 + 1min;
  auto w1 = w0 + 1min - 30min;
  auto drift = clock_drift(s1 - s0, w1 - w0);
  CHECK(clocks_jumped(drift));
  CHECK(reanchor(anchor, s1, w1, expires_at) == anchor);  // kept, not extended by 30 min
}

TEST_CASE("ordinary_scheduling_jitter_is_not_a_clock_jump") {
  CHECK_FALSE(clocks_jumped(clock_drift(10s, 10s + 300ms)));
  CHECK_FALSE(clocks_jumped(clock_drift(10s, 10s - 1500ms)));
  CHECK(clocks_jumped(clock_drift(10s, 13s)));
}
