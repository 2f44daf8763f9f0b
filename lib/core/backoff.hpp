// Exponential backoff with full jitter (delay drawn uniformly in [0, min(cap, base * 2^n)]),
// honouring a server's Retry-After. The random engine is injected so tests are deterministic.
#pragma once

#include <chrono>
#include <random>

namespace tokenbroker {

class backoff {
 public:
  using duration = std::chrono::milliseconds;

  explicit backoff(duration base = std::chrono::seconds{1}, duration cap = std::chrono::minutes{5})
      : base_(base), cap_(cap) {}

  /// The delay before the next attempt; never less than `retry_after`, never more than the cap
  /// unless the server's Retry-After asks for longer.
  duration next(std::mt19937_64& rng, duration retry_after = duration{0});
  /// The ceiling of the next draw (base * 2^attempts, capped).
  duration ceiling() const;
  /// Forget past failures (after a success).
  void reset() noexcept { attempts_ = 0; }
  int attempts() const noexcept { return attempts_; }

 private:
  duration base_;
  duration cap_;
  int attempts_ = 0;
};

}  // namespace tokenbroker
