// Pure parsers for what an RFC 6749 token endpoint answers. Plain data in, values out: no I/O,
// no clock, no globals, so a libFuzzer target can call them with arbitrary bytes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "broker/token.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "core/time.hpp"

namespace tokenbroker::oauth2 {

/// Lifetime assumed when a successful answer has no `expires_in` (RFC 6749 §5.1 makes it only
/// RECOMMENDED). One hour is what most providers issue; an earlier 401 upstream still renews.
inline constexpr std::chrono::seconds default_expires_in{3600};
/// Longest `expires_in` / `refresh_expires_in` taken at face value (larger values are clamped).
inline constexpr std::chrono::seconds max_expires_in{std::chrono::hours{24 * 366}};
/// Longest Retry-After honoured; a provider asking for more is retried after this.
inline constexpr std::chrono::seconds max_retry_after{std::chrono::minutes{30}};
/// Bodies longer than this are refused unread (token answers are a few kilobytes).
inline constexpr std::size_t max_token_response = 256 * 1024;

/// Parses a token-endpoint answer received at `received_at` (RFC 6749 §5.1 / §5.2).
///
/// 200 with a JSON object holding a string `access_token` → a bundle: `expires_in` (a number or
/// a numeric string; absent → default_expires_in) becomes `expires_at = received_at +
/// expires_in`; `token_type` (default "Bearer"), `scope`, a rotated `refresh_token` and
/// Keycloak's `refresh_expires_in` are kept; an `id_token` is checked to be a string and
/// dropped (the broker is no relying party). An empty `refresh_token` in the bundle means "none
/// returned": the caller keeps the one it has.
///
/// Errors, by how the broker must react (broker::classify):
/// - `invalid_grant` → errc::unauthorized (the grant is dead: re-grant or needs_grant);
/// - `invalid_client`, `unauthorized_client`, `invalid_request`, `unsupported_grant_type`,
///   `invalid_scope`, any other error code, and 4xx without one → errc::refused (fatal);
/// - `temporarily_unavailable` / `server_error` → errc::unavailable (retry);
/// - 5xx, 408 and 429 → errc::http_status with the status (retry);
/// - a 200 that is not a usable token → errc::malformed (retry).
/// Each carries the provider's `error` and sanitized `error_description` in its message and
/// `retry_after` from the Retry-After value (delta seconds or an HTTP date, at most
/// max_retry_after).
result<broker::token_bundle> parse_token_response(unsigned status, std::string_view content_type,
                                                  std::string_view body,
                                                  sys_seconds received_at,
                                                  std::string_view retry_after = {});

/// `text` made safe for a log line or an API message: printable ASCII only (anything else
/// becomes '?', runs of whitespace one space), at most `max` characters (then "...").
std::string sanitize(std::string_view text, std::size_t max = 200);

/// `text` with every occurrence of a non-empty secret replaced by "<redacted>": providers echo
/// what they were sent ("refresh token 'abc...' expired").
std::string redact(std::string text, const std::vector<const secret*>& secrets);

}  // namespace tokenbroker::oauth2
