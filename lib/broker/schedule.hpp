// When to refresh: pure functions of the token's lifetime, so they are tested in virtual time.
#pragma once

#include <chrono>
#include <random>

namespace tokenbroker::broker {

using millis = std::chrono::milliseconds;

struct schedule_policy {
  millis margin{std::chrono::seconds{60}};  // refresh no later than expiry - margin
  millis margin_floor{std::chrono::seconds{5}};
  double jitter = 0.10;  // ±10% around the half-life point
};

/// The margin actually applied: max(margin, floor), but never more than half the lifetime, so a
/// short-lived token is not refreshed the moment it arrives.
millis effective_margin(const schedule_policy& p, millis lifetime);

/// Delay from now until the refresh of a token with `lifetime` total validity, of which
/// `remaining` is left: about half the remaining lifetime (±jitter), never later than
/// remaining - effective_margin, never negative.
millis refresh_delay(const schedule_policy& p, millis lifetime, millis remaining,
                     std::mt19937_64& rng);

}  // namespace tokenbroker::broker
