// Timestamps on the wire: ISO 8601 / RFC 3339 in, RFC 3339 UTC out; durations like "90s".
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tokenbroker {

using sys_seconds = std::chrono::sys_seconds;

/// The wall clock, in whole seconds (the resolution of every expiry we hold).
inline sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

/// Parses "2026-02-21T15:33:44+00:00", "2027-04-21T12:00:00Z", "...T12:00:00.123Z", "+0100",
/// or a space instead of 'T'. Fractions are truncated. nullopt on anything else.
std::optional<sys_seconds> parse_timestamp(std::string_view s);

/// Formats as RFC 3339 UTC: "2026-02-21T15:33:44Z".
std::string format_timestamp(sys_seconds t);

/// Longest duration parse_duration accepts (about ten years).
inline constexpr std::chrono::milliseconds max_duration{std::chrono::hours{24 * 3660}};
/// Parses "250ms", "90s", "5m", "2h", "1d" (and bare seconds "30"), at most max_duration; nullopt
/// on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

/// Parses an HTTP Retry-After value (delta seconds or an IMF-fixdate) relative to `now`.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view s, sys_seconds now);

}  // namespace tokenbroker
