#include "core/backoff.hpp"

#include <algorithm>

namespace tokenbroker {

backoff::duration backoff::ceiling() const {
  auto c = base_;
  for (int i = 0; i < attempts_ && c < cap_; ++i) c *= 2;
  return std::min(c, cap_);
}

backoff::duration backoff::next(std::mt19937_64& rng, duration retry_after) {
  auto ceil = ceiling();
  ++attempts_;
  std::uniform_int_distribution<duration::rep> dist(0, ceil.count());
  return std::max(duration{dist(rng)}, retry_after);
}

}  // namespace tokenbroker
