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

/// The gap between how far the wall clock and the monotonic clock moved over the same interval:
/// positive after a suspend (the monotonic clock stood still) or a forward clock change.
millis clock_drift(std::chrono::steady_clock::duration steady_elapsed,
                   std::chrono::system_clock::duration wall_elapsed);

/// True when `drift` is large enough to re-check tokens (more than 2 s either way).
bool clocks_jumped(millis drift);

/// The monotonic instant a token expiring at `expires_at` (wall clock) expires, re-read now and
/// kept no later than the previous `anchor`: a suspend brings expiry closer, a backward wall
/// clock change never extends a token.
std::chrono::steady_clock::time_point reanchor(std::chrono::steady_clock::time_point anchor,
                                               std::chrono::steady_clock::time_point steady_now,
                                               std::chrono::system_clock::time_point wall_now,
                                               std::chrono::system_clock::time_point expires_at);

}  // namespace tokenbroker::broker
