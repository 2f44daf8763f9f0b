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

millis clock_drift(std::chrono::steady_clock::duration steady_elapsed,
                   std::chrono::system_clock::duration wall_elapsed) {
  return std::chrono::duration_cast<millis>(wall_elapsed) -
         std::chrono::duration_cast<millis>(steady_elapsed);
}

bool clocks_jumped(millis drift) {
  return drift > std::chrono::seconds{2} || drift < -std::chrono::seconds{2};
}

std::chrono::steady_clock::time_point reanchor(std::chrono::steady_clock::time_point anchor,
                                               std::chrono::steady_clock::time_point steady_now,
                                               std::chrono::system_clock::time_point wall_now,
                                               std::chrono::system_clock::time_point expires_at) {
  auto fresh = steady_now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                expires_at - wall_now);
  return std::min(anchor, fresh);
}

}  // namespace tokenbroker::broker
