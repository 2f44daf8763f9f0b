#include "broker/schedule.hpp"

#include <algorithm>

namespace tokenbroker::broker {

millis effective_margin(const schedule_policy& p, millis lifetime) {
  return std::min(std::max(p.margin, p.margin_floor), lifetime / 2);
}

millis refresh_delay(const schedule_policy& p, millis lifetime, millis remaining,
                     std::mt19937_64& rng) {
  if (remaining <= millis{0}) return millis{0};
  std::uniform_real_distribution<double> dist(1.0 - p.jitter, 1.0 + p.jitter);
  auto half = static_cast<double>(remaining.count()) / 2.0;
  auto target = millis{static_cast<millis::rep>(half * dist(rng))};
  auto latest = remaining - effective_margin(p, lifetime);
  return std::clamp(std::min(target, latest), millis{0}, remaining);
}

}  // namespace tokenbroker::broker
