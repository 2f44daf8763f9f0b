#include "privicore/parse.hpp"

#include <algorithm>
#include <cctype>

#include "privicore/json_fields.hpp"

namespace tokenbroker::privicore {
namespace {

using namespace json_fields;

error malformed(std::string message) { return make_error(errc::malformed, std::move(message)); }

error missing(std::string_view name) {
  return malformed("field \"" + std::string(name) + "\" is missing or not a non-empty string");
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  });
}

result<json> body_json(const http::response& res) {
  auto j = json::parse(res.body(), nullptr, false);
  if (j.is_discarded()) return malformed("answer is not valid JSON");
  // json converts implicitly to anything, error included: construct the value explicitly.
  return result<json>{boost::system::in_place_value, std::move(j)};
}

result<json> success_json(const http::response& res) {
  if (!is_success(res)) return response_error(res);
  return body_json(res);
}

result<json> success_object(const http::response& res) {
  auto j = success_json(res);
  if (j && !j->is_object()) return malformed("answer is not a JSON object");
  return j;
}

/// An ISO 8601 timestamp field: nullopt when absent, an error when present but unreadable.
result<std::optional<sys_seconds>> timestamp_field(const json& j,
                                                   std::initializer_list<const char*> keys) {
  const json* v = field(j, keys);
  if (!v) return std::optional<sys_seconds>{};
  auto t = v->is_string() ? parse_timestamp(v->get_ref<const std::string&>()) : std::nullopt;
  if (!t) return malformed("field \"" + std::string(*keys.begin()) + "\" is not a timestamp");
  return std::optional<sys_seconds>{*t};
}

/// A lifetime in seconds (a non-negative number or numeric string), at most max_expiry_horizon:
/// longer ones are clamped like absolute expiries (1e308 is a long lifetime, not an error).
std::optional<std::chrono::seconds> lifetime(const json* v) {
  using std::chrono::seconds;
  if (v->is_number_unsigned())
    return v->get<std::uint64_t>() > static_cast<std::uint64_t>(max_expiry_horizon.count())
               ? max_expiry_horizon
               : seconds{v->get<std::int64_t>()};
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (!(d >= 0)) return std::nullopt;  // also NaN
    if (d >= static_cast<double>(max_expiry_horizon.count())) return max_expiry_horizon;
    return seconds{static_cast<std::int64_t>(d)};
  }
  auto n = integer(v);
  if (!n || *n < 0) return std::nullopt;
  return std::min(seconds{*n}, max_expiry_horizon);
}

/// An expiry the engine can compute with: within ten years of now either way (clamp_expiry).
/// `keys` name an absolute timestamp; nullopt when absent, an error when unreadable.
result<std::optional<sys_seconds>> expiry_field(const json& j,
                                                std::initializer_list<const char*> keys,
                                                sys_seconds now) {
  auto at = timestamp_field(j, keys);
  if (!at || !*at) return at;
  return std::optional<sys_seconds>{clamp_expiry(**at, now)};
}

/// An absolute expiry, or (only when absent) a relative one counted from `now`; both clamped.
result<std::optional<sys_seconds>> expiry(const json& j, std::initializer_list<const char*> absolute,
                                          std::initializer_list<const char*> relative,
                                          sys_seconds now) {
  auto at = expiry_field(j, absolute, now);
  if (!at || *at) return at;
  const json* rel = field(j, relative);
  if (!rel) return std::optional<sys_seconds>{};
  auto life = lifetime(rel);
  if (!life)
    return malformed("field \"" + std::string(*relative.begin()) + "\" is not a number of seconds");
  return std::optional<sys_seconds>{now + *life};
}

/// An id fit for a URL path and a log line: printable ASCII, no spaces, at most 256 bytes.
bool plausible_id(std::string_view s) {
  return !s.empty() && s.size() <= 256 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 127; });
}

/// §3: a bare string, a one-element array, or an object with the id under a known key.
result<std::string> command_id_from(const json& j) {
  const json* v = &j;
  if (v->is_array()) {
    if (v->size() != 1) return malformed("command id: expected a one-element array");
    v = &(*v)[0];
  } else if (v->is_object()) {
    v = field(*v, {"commandId", "id", "requestId"});
    if (!v) return missing("commandId");
  }
  if (!v->is_string() || !plausible_id(v->get_ref<const std::string&>()))
    return malformed("command id is not a plausible id string");
  return v->get<std::string>();
}

result<profile_token> profile_token_from(const json& j) {
  auto token = string_field(j, {"authorizationToken"});
  if (!token) return missing("authorizationToken");
  auto at = expiry_field(j, {"expiresAt"}, now_seconds());
  if (!at) return at.error();
  if (!*at) return missing("expiresAt");
  return profile_token{secret{std::move(*token)}, **at};
}

command_state state_from_text(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "started" || s == "pending") return command_state::pending;
  if (s == "succeeded" || s == "success") return command_state::succeeded;
  return command_state::rejected;  // PRB: every other string is terminal (§5.2)
}

void add_reason(std::vector<std::string>& parts, const json& v) {
  if (!v.is_string()) return;
  auto s = v.get<std::string>();
  if (!s.empty() && std::find(parts.begin(), parts.end(), s) == parts.end())
    parts.push_back(std::move(s));
}

void collect_reasons(const json& j, std::vector<std::string>& parts, int depth) {
  if (j.is_string()) return add_reason(parts, j);
  if (!j.is_object()) return;
  for (const char* k : {"error", "code", "key", "message", "error_description", "detail", "title"}) {
    auto it = j.find(k);
    if (it == j.end()) continue;
    if (it->is_object() && depth == 0) collect_reasons(*it, parts, depth + 1);
    else add_reason(parts, *it);
  }
  if (auto it = j.find("errors"); it != j.end() && !it->is_null())
    parts.push_back(it->dump(-1, ' ', false, json::error_handler_t::replace));
}

/// The server's own reason text from a JSON error body; "" for any other body.
std::string server_reason(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return {};
  std::vector<std::string> parts;
  collect_reasons(j, parts, 0);
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += ": ";
    out += p;
  }
  return sanitize(out);
}

}  // namespace

sys_seconds clamp_expiry(sys_seconds t, sys_seconds now) {
  return std::clamp(t, now - max_expiry_horizon, now + max_expiry_horizon);
}


bool is_success(const http::response& res) noexcept {
  return res.result_int() >= 200 && res.result_int() < 300;
}

std::string sanitize(std::string_view text, std::size_t max) {
  bool cut = text.size() > max;
  if (cut) {
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // UTF-8 boundary
    text = text.substr(0, n);
  }
  std::string out(text);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (cut) out += "...";
  return out;
}

void redact(std::string& text, std::string_view value) {
  constexpr std::string_view marker = "<redacted>";
  if (value.size() < 4) return;
  for (auto pos = text.find(value); pos != std::string::npos; pos = text.find(value, pos)) {
    text.replace(pos, value.size(), marker);
    pos += marker.size();
  }
}

error response_error(const http::response& res, sys_seconds now) {
  std::string message{http::bhttp::obsolete_reason(res.result())};
  if (message.starts_with('<')) message.clear();  // "<unknown-status>"
  if (auto reason = server_reason(res.body()); !reason.empty())
    message += message.empty() ? reason : ": " + reason;
  std::chrono::seconds retry_after{0};
  if (auto it = res.find(http::field::retry_after); it != res.end())
    retry_after = parse_retry_after(it->value(), now).value_or(std::chrono::seconds{0});
  return make_http_error(res.result_int(), std::move(message), retry_after);
}

result<std::string> parse_health(const http::response& res) {
  if (!is_success(res)) return response_error(res);
  if (blank(res.body())) return std::string{};
  auto j = body_json(res);
  if (!j) return j.error();
  return sanitize(optional_string(*j, {"status"}), 64);
}

result<std::string> parse_command_id(const http::response& res) {
  auto j = success_json(res);
  if (!j) return j.error();
  return command_id_from(*j);
}

result<command_outcome> parse_command_status(const http::response& res, std::string_view id) {
  auto j = success_json(res);
  if (!j) return j.error();
  const json* v = &*j;
  if (v->is_array() && v->size() == 1) v = &(*v)[0];
  command_outcome out{std::string(id), command_state::pending, {}};
  if (v->is_string()) {
    out.body = sanitize(v->get_ref<const std::string&>());
    out.state = state_from_text(out.body);
    return out;
  }
  if (!v->is_object()) return malformed("command status is neither a string nor an object");
  if (const json* code = field(*v, {"command_status", "commandStatus"})) {
    auto n = integer(code);  // a number, or a numeric string
    if (!n || *n < 1 || *n > 3) return malformed("field \"command_status\" is not 1, 2 or 3");
    out.state = *n == 1 ? command_state::pending
                : *n == 2 ? command_state::succeeded
                          : command_state::rejected;
  } else if (auto text = string_field(*v, {"status"})) {
    out.state = state_from_text(*text);
  } else {
    return missing("command_status");
  }
  out.body = text(field(*v, {"body"}), 1000);
  return out;
}

result<profile_token> parse_profile_token(const http::response& res) {
  auto j = success_object(res);
  if (!j) return j.error();
  return profile_token_from(*j);
}

result<sys_seconds> parse_token_expiry(const http::response& res) {
  auto j = success_object(res);
  if (!j) return j.error();
  auto at = expiry_field(*j, {"expiresAt"}, now_seconds());
  if (!at) return at.error();
  if (!*at) return missing("expiresAt");
  return **at;
}

result<reauthorize_outcome> parse_reauthorize(const http::response& res) {
  if (!is_success(res)) return response_error(res);
  reauthorize_outcome out;
  if (blank(res.body())) return out;  // accepted, nothing known: ask token_expiry
  auto j = body_json(res);
  if (!j) return j.error();
  if (field(*j, {"authorizationToken"})) {
    auto t = profile_token_from(*j);
    if (!t) return t.error();
    out.token = std::move(*t);
    return out;
  }
  auto id = command_id_from(*j);
  if (!id) return id.error();
  out.command_id = std::move(*id);
  return out;
}

result<void> parse_no_content(const http::response& res) {
  if (!is_success(res)) return response_error(res);
  return {};
}

result<app_config> parse_app_config(const http::response& res, std::string_view application_id) {
  auto j = success_object(res);
  if (!j) return j.error();
  app_config out;
  auto client_id = string_field(*j, {"clientId"});
  if (!client_id) return missing("clientId");
  auto client_secret = string_field(*j, {"clientSecret"});
  if (!client_secret) return missing("clientSecret");
  out.client_id = std::move(*client_id);
  out.client_secret = secret{std::move(*client_secret)};
  out.application_id = string_field(*j, {"applicationId"}).value_or(std::string(application_id));
  out.redirect_uri = optional_string(*j, {"redirectUri"});
  out.scopes = scope_list(field(*j, {"scopes"}));
  return out;
}

result<authorization_code> parse_authorization_code(const http::response& res) {
  auto j = success_object(res);
  if (!j) return j.error();
  auto code = string_field(*j, {"authorizationCode"});
  if (!code) return missing("authorizationCode");
  auto at = expiry_field(*j, {"expiresAt"}, now_seconds());
  if (!at) return at.error();
  return authorization_code{optional_string(*j, {"clientId"}), optional_string(*j, {"nonce"}),
                            secret{std::move(*code)}, *at};
}

result<token_set> parse_token_set(const http::response& res, sys_seconds now) {
  auto j = success_object(res);
  if (!j) return j.error();
  // `token` is the documented name (§7.4 #23); the others only when it is absent.
  auto access = field(*j, {"token"}) ? string_field(*j, {"token"})
                                     : string_field(*j, {"accessToken", "access_token"});
  if (!access) return missing("token");
  token_set out;
  out.access_token = secret{std::move(*access)};
  out.refresh_token = secret{optional_string(*j, {"refreshToken", "refresh_token"})};
  out.type = string_field(*j, {"type", "tokenType", "token_type"}).value_or("bearer");
  auto scopes = scope_list(field(*j, {"scope", "scopes"}));
  for (const auto& s : scopes) out.scope += (out.scope.empty() ? "" : " ") + s;
  out.client_id = optional_string(*j, {"clientId", "client_id"});
  auto at = expiry(*j, {"expiresAt", "expires_at"}, {"expiresIn", "expires_in"}, now);
  if (!at) return at.error();
  if (!*at) return missing("expiresAt");
  out.expires_at = **at;
  auto refresh_at = expiry(*j, {"refreshTokenExpiresAt", "refresh_token_expires_at"},
                           {"refreshTokenExpiresIn", "refresh_token_expires_in"}, now);
  if (!refresh_at) return refresh_at.error();
  out.refresh_expires_at = *refresh_at;
  return out;
}

result<refresh_outcome> parse_refresh(const http::response& res, sys_seconds now) {
  if (!is_success(res)) return response_error(res);
  if (blank(res.body())) return refresh_outcome{};  // OFF: 202 without a body
  auto tokens = parse_token_set(res, now);
  if (tokens) return refresh_outcome{std::move(*tokens)};
  // A 202 is an acceptance whatever it carries; only a 200 promises a token body.
  if (res.result() == http::status::accepted) return refresh_outcome{};
  return tokens.error();
}

result<std::vector<application_summary>> parse_application_list(const http::response& res) {
  auto j = success_json(res);
  if (!j) return j.error();
  const json* items = j->is_array() ? &*j : field(*j, {"items", "applications", "data"});
  if (!items || !items->is_array()) return malformed("application list: no \"items\" array");
  std::vector<application_summary> out;
  for (const auto& item : *items) {
    auto id = string_field(item, {"applicationId", "id"});
    if (!id) return missing("items[].applicationId");
    application_summary a;
    a.application_id = std::move(*id);
    a.name = optional_string(item, {"name"});
    a.client_id = optional_string(item, {"clientId"});
    a.scopes = scope_list(field(item, {"scopes", "scope"}));
    auto created = timestamp_field(item, {"createdAt"});
    if (created) a.created_at = *created;  // a listing is informative: tolerate a bad date
    out.push_back(std::move(a));
  }
  return out;
}

result<nlohmann::json> parse_json_body(const http::response& res) {
  if (!is_success(res)) return response_error(res);
  if (blank(res.body())) return result<json>{boost::system::in_place_value, nullptr};
  return body_json(res);
}

}  // namespace tokenbroker::privicore
