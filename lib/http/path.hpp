// Path handling for the proxy: the part of a local request-target that is forwarded upstream.
#pragma once

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace tokenbroker::http {

/// Checks the raw, still percent-encoded path that follows `/v1/proxy/{name}` and returns it for
/// appending to the credential's api_url ("" becomes "/"). The broker must never become an open
/// proxy, so anything that could climb out of api_url's path, or be read differently by the
/// upstream than by us, is refused (errc::invalid_argument, with the reason):
///   - characters outside RFC 3986 `pchar` and '/', including '\', controls, spaces, non-ASCII;
///   - malformed percent-escapes, and escapes of '/', '\', '%', NUL or other control bytes
///     (encoded separators and double-encoding are how path tricks hide);
///   - empty segments ("//"), and segments that are "." or ".." once decoded, also with a
///     ";parameter" suffix ("..;" is ".." to some servers).
result<std::string> clean_proxy_path(std::string_view raw);

/// A query string (without '?') safe to forward: RFC 3986 query characters and valid escapes.
bool valid_query(std::string_view query) noexcept;

}  // namespace tokenbroker::http
