#include "core/backoff.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

TEST_CASE("backoff_ceiling_doubles_from_one_second_to_five_minutes") {
  backoff b;
  std::mt19937_64 rng(42);
  std::vector<ms> ceilings;
  for (int i = 0; i < 12; ++i) {
    ceilings.push_back(b.ceiling());
    auto d = b.next(rng);
    CHECK(d >= 0ms);
    CHECK(d <= ceilings.back());
  }
  CHECK(ceilings[0] == 1s);
  CHECK(ceilings[1] == 2s);
  CHECK(ceilings[2] == 4s);
  CHECK(ceilings[8] == 256s);
  CHECK(ceilings[9] == 5min);
  CHECK(ceilings[11] == 5min);
}

TEST_CASE("backoff_uses_full_jitter_across_the_whole_range") {
  backoff b(1000ms, 1000ms);
  std::mt19937_64 rng(7);
  ms lo = 1000ms, hi = 0ms;
  for (int i = 0; i < 2000; ++i) {
    auto d = b.next(rng);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  CHECK(lo < 50ms);
  CHECK(hi > 950ms);
}

TEST_CASE("backoff_honours_retry_after_even_past_the_cap") {
  backoff b(1s, 5min);
  std::mt19937_64 rng(1);
  CHECK(b.next(rng, 30s) >= 30s);
  CHECK(b.next(rng, 10min) == 10min);
}

TEST_CASE("backoff_reset_starts_over") {
  backoff b;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 5; ++i) b.next(rng);
  CHECK(b.attempts() == 5);
  b.reset();
  CHECK(b.ceiling() == 1s);
}
