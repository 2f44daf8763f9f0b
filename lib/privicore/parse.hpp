// Pure parsers from a Privicore answer (status, headers, body) to typed values (PROTOCOL.md §5).
//
// Every parser maps a non-2xx answer to response_error(); malformed JSON or a missing required
// field to errc::malformed naming the field (never echoing a value). Messages never contain the
// body verbatim: only the server's own reason text, truncated.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/time.hpp"
#include "http/beast.hpp"
#include "privicore/types.hpp"

namespace tokenbroker::privicore {

/// How far from now an expiry Privicore sends may lie: about ten years either way.
inline constexpr std::chrono::seconds max_expiry_horizon{std::chrono::hours{24 * 3660}};
/// `t` moved into [now - max_expiry_horizon, now + max_expiry_horizon]. Every expiry parsed here
/// (absolute or relative) is clamped, not refused: a server that means "never" by the year 9999
/// still yields a working token, renewed within ten years, while the engine compares expiries
/// with system_clock, whose nanoseconds overflow after 2262 (and before 1677). Only what is not
/// a timestamp or a non-negative number of seconds at all is malformed.
sys_seconds clamp_expiry(sys_seconds t, sys_seconds now);

/// True for 2xx.
bool is_success(const http::response& res) noexcept;

/// The error for a non-2xx answer: errc::http_status with the status (401 included: callers
/// switch on `status`), a message made of the reason phrase and, for JSON bodies only, the
/// server's `error`/`code`/`message`/`error_description` text (≤ 200 characters), and
/// Retry-After in `retry_after`. Error body shapes are UNKNOWN (§8), hence the several keys.
error response_error(const http::response& res, sys_seconds now = now_seconds());

/// `{"status": "..."}` → the status text; "" when a 2xx answer has no such field (§5.1).
result<std::string> parse_health(const http::response& res);

/// An async command id in any of the three shapes of §3 (bare string, one-element array,
/// `{"commandId": …}`), also tolerating `{"id": …}` and `{"requestId": …}`.
result<std::string> parse_command_id(const http::response& res);

/// /request-status answer (§5.2, §7.4 #34): a bare string or one-element array (`started` →
/// pending, `succeeded`/`success` → succeeded, any other string is terminal → rejected with the
/// string as body, as PRB does), or the stub object `{command_status: 1|2|3, body}`.
result<command_outcome> parse_command_status(const http::response& res, std::string_view id);

/// `{"authorizationToken", "expiresAt"}` (§5.3); both required.
result<profile_token> parse_profile_token(const http::response& res);

/// `{"expiresAt"}` (§5.4).
result<sys_seconds> parse_token_expiry(const http::response& res);

/// Either a new token (`authorizationToken`, `expiresAt`) or a command id (§5.5, §7.3 #20).
result<reauthorize_outcome> parse_reauthorize(const http::response& res);

/// Any 2xx, body ignored (revoke, §5.6: body UNKNOWN).
result<void> parse_no_content(const http::response& res);

/// `clientId`, `clientSecret` required; `applicationId` (else `application_id` is used),
/// `redirectUri`, `scopes` (array or comma list) optional (§5.8).
result<app_config> parse_app_config(const http::response& res, std::string_view application_id);

/// `authorizationCode` required; `clientId`, `nonce`, `expiresAt` optional (§5.10).
result<authorization_code> parse_authorization_code(const http::response& res);

/// `token` (fallbacks `accessToken`, `access_token` only when `token` is absent, §7.4 #23),
/// `refreshToken`, `type`, `scope`, `expiresAt` (or, only if absent, `expiresIn` seconds after
/// `now`, §7.4 #25), `refreshTokenExpiresAt`, `clientId` (§5.11).
result<token_set> parse_token_set(const http::response& res, sys_seconds now);

/// 200/201 with a token body → tokens; 202, or any 2xx with an empty/whitespace body →
/// accepted without a body (§5.12, §7.3 #18: both are documented).
result<refresh_outcome> parse_refresh(const http::response& res, sys_seconds now);

/// The application list (§5.13, stub shape UNKNOWN): `{"items": [...]}`, `{"applications":
/// [...]}`, `{"data": [...]}` or a bare array; ids from `applicationId` or `id`.
result<std::vector<application_summary>> parse_application_list(const http::response& res);

/// Any JSON body of a 2xx answer, unparsed (§5.14: the scope answer is UNKNOWN).
result<nlohmann::json> parse_json_body(const http::response& res);

/// Replaces every occurrence of `value` in `text` with "<redacted>". Values shorter than 4 bytes
/// are left alone: they cannot be told apart from ordinary words, and no credential is that short.
void redact(std::string& text, std::string_view value);

/// Cuts `text` to `max` bytes (adding "…") and replaces control characters with spaces.
std::string sanitize(std::string_view text, std::size_t max = 200);

}  // namespace tokenbroker::privicore
