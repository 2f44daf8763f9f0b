#include "oauth2/discovery.hpp"

#include <nlohmann/json.hpp>

#include "oauth2/parse.hpp"

namespace tokenbroker::oauth2 {
namespace {

using json = nlohmann::json;

std::string_view without_slash(std::string_view s) {
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return s;
}

result<http::url> endpoint_url(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string())
    return make_error(errc::malformed, std::string("discovery document has no ") + key);
  auto u = http::url::parse(it->get_ref<const std::string&>());
  if (!u) return make_error(errc::malformed, std::string("discovery document: ") + key + ": " +
                                                 u.error().message);
  if (u->scheme != "https" && !(u->scheme == "http" && u->loopback()))
    return make_error(errc::refused, std::string("discovery document: ") + key +
                                         " must be an https URL");
  return *u;
}

}  // namespace

std::string issuer_string(const http::url& issuer) {
  auto s = issuer.scheme + "://" + issuer.host_header() + issuer.path;
  return std::string(without_slash(s));
}

http::url discovery_url(const http::url& issuer) {
  auto u = issuer;
  u.query.clear();
  u.path = std::string(without_slash(u.path)) + "/.well-known/openid-configuration";
  return u;
}

result<endpoints> parse_discovery(unsigned status, std::string_view body,
                                  std::string_view expected_issuer) {
  if (status != 200)
    return make_http_error(static_cast<int>(status), "OpenID discovery answered HTTP " +
                                                         std::to_string(status));
  if (body.size() > max_token_response)
    return make_error(errc::malformed, "discovery document exceeds the size limit");
  auto doc = json::parse(body, nullptr, false);
  if (!doc.is_object()) return make_error(errc::malformed, "discovery document is not a JSON object");
  auto iss = doc.find("issuer");
  if (iss == doc.end() || !iss->is_string())
    return make_error(errc::malformed, "discovery document has no issuer");
  if (without_slash(iss->get_ref<const std::string&>()) != without_slash(expected_issuer))
    return make_error(errc::refused, "discovery document names issuer \"" +
                                         sanitize(iss->get_ref<const std::string&>(), 120) +
                                         "\", not the configured \"" +
                                         std::string(expected_issuer) + "\"");
  endpoints e;
  e.issuer = iss->get<std::string>();
  auto token = endpoint_url(doc, "token_endpoint");
  if (!token) return token.error();
  e.token = *token;
  if (doc.contains("authorization_endpoint")) {
    auto authz = endpoint_url(doc, "authorization_endpoint");
    if (!authz) return authz.error();
    e.authorization = *authz;
  }
  return e;
}

}  // namespace tokenbroker::oauth2
