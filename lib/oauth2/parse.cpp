#include "oauth2/parse.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace tokenbroker::oauth2 {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;

// A lifetime as a number or a numeric string (Azure AD v1 sends "3599"). nullopt when malformed.
std::optional<seconds> lifetime(const json& v) {
  double d = 0;
  if (v.is_number()) {
    d = v.get<double>();
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    d = static_cast<double>(n);
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(d) || d < 0) return std::nullopt;
  if (d > static_cast<double>(max_expires_in.count())) return max_expires_in;
  return seconds{static_cast<std::int64_t>(d)};
}

std::string error_code_of(const json& j) {
  auto it = j.find("error");
  return it != j.end() && it->is_string() ? sanitize(it->get_ref<const std::string&>(), 64) : "";
}

std::string description_of(const json& j) {
  auto it = j.find("error_description");
  return it != j.end() && it->is_string() ? sanitize(it->get_ref<const std::string&>()) : "";
}

error failure(unsigned status, const json& j, std::string_view content_type, seconds retry) {
  auto code = j.is_object() ? error_code_of(j) : std::string{};
  auto desc = j.is_object() ? description_of(j) : std::string{};
  std::string what = code.empty() ? "HTTP " + std::to_string(status) : code;
  if (!desc.empty()) what += ": " + desc;
  if (code.empty() && !j.is_object() && !content_type.empty())
    what += " (" + sanitize(content_type, 60) + " answer)";
  error e;
  e.retry_after = retry;
  e.message = "token endpoint: " + what;
  if (code == "invalid_grant") e.code = errc::unauthorized;
  else if (code == "temporarily_unavailable" || code == "server_error") e.code = errc::unavailable;
  else if (status >= 500 || status == 408 || status == 429) e.code = errc::http_status;
  else e.code = errc::refused;
  e.status = static_cast<int>(status);
  return e;
}

}  // namespace

std::string sanitize(std::string_view text, std::size_t max) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += (c > 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  return out;
}

std::string redact(std::string text, const std::vector<const secret*>& secrets) {
  for (const auto* s : secrets) {
    if (!s || s->empty()) continue;
    const auto& v = s->reveal();
    for (auto pos = text.find(v); pos != std::string::npos; pos = text.find(v, pos + 10))
      text.replace(pos, v.size(), "<redacted>");
  }
  return text;
}

result<broker::token_bundle> parse_token_response(unsigned status, std::string_view content_type,
                                                  std::string_view body,
                                                  sys_seconds received_at,
                                                  std::string_view retry_after) {
  seconds retry{0};
  if (!retry_after.empty()) {
    if (auto r = parse_retry_after(retry_after, received_at)) retry = std::min(*r, max_retry_after);
  }
  if (body.size() > max_token_response)
    return make_error(errc::malformed, "token endpoint answer of " + std::to_string(body.size()) +
                                           " bytes exceeds the limit");
  auto j = json::parse(body, nullptr, false);
  if (status != 200) return failure(status, j, content_type, retry);

  // The body decides, not Content-Type: some servers label JSON text/plain.
  if (!j.is_object()) {
    return make_error(errc::malformed,
                      "token endpoint answered 200 without a JSON object" +
                          (content_type.empty() ? std::string{}
                                                : " (" + sanitize(content_type, 60) + ")"));
  }
  // An error object with status 200 happens (misbehaving gateways): treat it as the error.
  if (j.contains("error") && !j.contains("access_token")) {
    auto e = failure(400, j, content_type, retry);
    e.status = 200;
    return e;
  }
  auto at = j.find("access_token");
  if (at == j.end() || !at->is_string() || at->get_ref<const std::string&>().empty())
    return make_error(errc::malformed, "token endpoint answer has no access_token");

  broker::token_bundle b;
  b.access_token = secret{at->get<std::string>()};
  b.obtained_at = received_at;
  b.expires_at = received_at + default_expires_in;
  if (auto it = j.find("expires_in"); it != j.end() && !it->is_null()) {
    auto life = lifetime(*it);
    if (!life) return make_error(errc::malformed, "token endpoint answer has a malformed expires_in");
    b.expires_at = received_at + *life;
  }
  if (auto it = j.find("token_type"); it != j.end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      return make_error(errc::malformed, "token endpoint answer has a malformed token_type");
    b.token_type = sanitize(it->get_ref<const std::string&>(), 32);
  }
  if (auto it = j.find("scope"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return make_error(errc::malformed, "token endpoint answer has a malformed scope");
    b.scope = sanitize(it->get_ref<const std::string&>(), 4096);
  }
  if (auto it = j.find("refresh_token"); it != j.end() && !it->is_null()) {
    if (!it->is_string())
      return make_error(errc::malformed, "token endpoint answer has a malformed refresh_token");
    b.refresh_token = secret{it->get<std::string>()};
  }
  if (auto it = j.find("refresh_expires_in"); it != j.end() && !it->is_null()) {
    auto life = lifetime(*it);
    if (!life)
      return make_error(errc::malformed, "token endpoint answer has a malformed refresh_expires_in");
    // Keycloak: 0 means the refresh token lives as long as the session (no known expiry).
    if (life->count() > 0) b.refresh_expires_at = received_at + *life;
  }
  if (auto it = j.find("id_token"); it != j.end() && !it->is_null() && !it->is_string())
    return make_error(errc::malformed, "token endpoint answer has a malformed id_token");
  return b;
}

}  // namespace tokenbroker::oauth2
