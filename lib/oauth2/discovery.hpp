// OpenID Connect Discovery 1.0 (§4): the provider's endpoints from its configuration document.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "http/url.hpp"

namespace tokenbroker::oauth2 {

/// Where a provider's endpoints are, from configuration or discovery.
struct endpoints {
  std::string issuer;                      // as the provider spells it ("" with token_url)
  http::url token;
  std::optional<http::url> authorization;  // needed by the authorization_code grant only
};

/// The issuer as a string without a trailing '/': the form compared against the document.
std::string issuer_string(const http::url& issuer);

/// `{issuer}/.well-known/openid-configuration` (the issuer's path kept, §4.1).
http::url discovery_url(const http::url& issuer);

/// Parses a discovery answer. The document's `issuer` must equal `expected_issuer` (trailing
/// '/' ignored; §4.3: anything else is a mix-up or a misconfiguration → errc::refused);
/// `token_endpoint` is required and, like `authorization_endpoint`, must be https or a
/// loopback http URL. A non-200 status becomes errc::http_status, other garbage
/// errc::malformed (both retried).
result<endpoints> parse_discovery(unsigned status, std::string_view body,
                                  std::string_view expected_issuer);

}  // namespace tokenbroker::oauth2
