// Profiles, profile tokens, commands and the admin views of the simulator state.
#include "state.hpp"

#include <openssl/sha.h>

#include <stdexcept>

#include "core/random.hpp"
#include "core/time.hpp"

namespace tokenbroker::sim {

using json = nlohmann::json;

void throw_exception_from_error(const failure& f, const boost::source_location&) {
  throw std::logic_error("unexpected failure " + f.error + ": " + f.message);
}

std::string new_uuid() {
  std::string h = random_hex(16);
  h[12] = '4';                                                  // version 4
  h[16] = "89ab"[std::stoi(h.substr(16, 1), nullptr, 16) & 3];  // RFC 4122 variant
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

std::string token_fp(std::string_view token) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), d);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}

std::string wire_time(time_point t) {
  return format_timestamp(std::chrono::floor<std::chrono::seconds>(t));
}

state::state(clock_fn now, const switches& sw) : now_(std::move(now)), sw_(sw) {}

void state::add_profile(const std::string& user, const std::string& password) {
  profiles_[user] = profile_record{password, true};
}

std::string state::issue_token(token_kind kind, std::string profile, std::chrono::milliseconds ttl,
                               std::string grant_id, std::string client_id) {
  std::string value = random_base64url(32);
  tokens_[value] = token_record{kind,
                                token_state::active,
                                std::move(profile),
                                std::move(grant_id),
                                std::move(client_id),
                                now_() + ttl};
  return value;
}

token_record* state::find_token(std::string_view token) {
  auto it = tokens_.find(token);
  return it == tokens_.end() ? nullptr : &it->second;
}

std::string state::why_invalid(const token_record& t) const {
  if (t.state == token_state::revoked) return "revoked";
  if (t.state == token_state::superseded) return "superseded";
  if (now_() >= t.expires_at) return "expired";
  return {};
}

failure state::reject_token(std::string error, std::string reason) {
  ++counters_.rejected_tokens;
  return failure{401, std::move(error), "token " + reason};
}

outcome<profile_token_issue> state::authenticate(std::string_view user, std::string_view password) {
  auto it = profiles_.find(user);
  if (it == profiles_.end() || !it->second.active || it->second.password != password) {
    ++counters_.authentication_failures;
    return failure{401, "profile.invalid_credentials", "invalid credentials"};
  }
  ++counters_.authentications;
  auto token = issue_token(token_kind::profile, it->first, sw_.profile_token_ttl);
  return profile_token_issue{token, tokens_[token].expires_at};
}

outcome<std::string> state::profile_of(std::string_view token) {
  if (token.empty())
    return failure{401, "profile.unauthorized", "missing X-DPT-AUTHORIZATION header"};
  auto* t = find_token(token);
  if (!t || t->kind != token_kind::profile)
    return reject_token("profile.invalid_token", t ? "is not a profile token" : "unknown");
  if (auto why = why_invalid(*t); !why.empty()) return reject_token("profile.invalid_token", why);
  return t->profile;
}

std::optional<std::string> state::peek_profile(std::string_view token) const {
  auto it = tokens_.find(token);
  if (it == tokens_.end() || it->second.kind != token_kind::profile) return std::nullopt;
  if (!why_invalid(it->second).empty()) return std::nullopt;
  return it->second.profile;
}

outcome<time_point> state::token_expiry(std::string_view token) {
  auto p = profile_of(token);
  if (!p) return p.error();
  return find_token(token)->expires_at;
}

outcome<profile_token_issue> state::reauthorize(std::string_view token,
                                                std::chrono::milliseconds ttl) {
  auto p = profile_of(token);
  if (!p) return p.error();
  find_token(token)->state = token_state::superseded;
  auto fresh = issue_token(token_kind::profile, *p, ttl);
  return profile_token_issue{fresh, tokens_[fresh].expires_at};
}

outcome<std::string> state::reauthorize_command(std::string_view token,
                                                std::chrono::milliseconds ttl) {
  auto p = profile_of(token);
  if (!p) return p.error();
  auto id = new_command(command_kind::reauthorize, *p, command_status::succeeded,
                        "Authorization token reauthorized");
  commands_[id].subject = std::string(token);
  commands_[id].ttl = ttl;
  return id;
}

outcome<void> state::revoke_profile_token(std::string_view token) {
  auto p = profile_of(token);
  if (!p) return p.error();
  find_token(token)->state = token_state::revoked;
  return {};
}

outcome<std::string> state::register_profile(std::string_view user, std::string_view password) {
  if (user.empty() || password.empty())
    return failure{422, "profile.validation", "username and password are required"};
  if (profiles_.count(user))
    return failure{409, "profile.username_taken", "username already registered"};
  profiles_[std::string(user)] = profile_record{std::string(password), false};
  auto id = new_command(command_kind::register_profile, std::string(user),
                        command_status::succeeded, "Profile registered");
  commands_[id].subject = std::string(user);
  return id;
}

std::string state::new_command(command_kind kind, std::string profile, command_status planned,
                               std::string body) {
  auto id = new_uuid();
  ++counters_.commands;
  command c;
  c.id = id;
  c.kind = kind;
  c.profile = std::move(profile);
  c.planned = planned;
  c.body = std::move(body);
  commands_[id] = std::move(c);
  return id;
}

const command* state::find_command(std::string_view id) const {
  auto it = commands_.find(id);
  return it == commands_.end() ? nullptr : &it->second;
}

const command* state::complete(std::string_view id) {
  auto it = commands_.find(id);
  if (it == commands_.end()) return nullptr;
  command& c = it->second;
  if (c.status != command_status::started || c.never) return nullptr;
  c.status = c.planned;
  bool ok = c.status == command_status::succeeded;
  switch (c.kind) {
    case command_kind::register_profile:
      if (ok)
        profiles_[c.subject].active = true;
      else
        profiles_.erase(c.subject);
      break;
    case command_kind::register_app:
      if (ok) apps_[c.id].ready = true;
      break;
    case command_kind::request_code:
      if (ok) code_requests_[c.id].ready = true;
      break;
    case command_kind::reauthorize:
      if (auto* t = find_token(c.subject); ok && t && why_invalid(*t).empty())
        t->expires_at = now_() + c.ttl;
      break;
    case command_kind::data:
      break;
  }
  return &c;
}

json state::check(std::string_view token) const {
  auto it = tokens_.find(token);
  if (it == tokens_.end())
    return json{{"valid", false}, {"kind", "unknown"}, {"reason", "unknown"}};
  const token_record& t = it->second;
  auto why = why_invalid(t);
  // An OAuth token also dies with its grant (POST /_sim/revoke-grants).
  if (why.empty() && !t.grant_id.empty())
    if (auto g = grants_.find(t.grant_id); g != grants_.end() && g->second.revoked) why = "revoked";
  const char* kind = t.kind == token_kind::profile  ? "profile"
                     : t.kind == token_kind::access ? "access"
                                                    : "refresh";
  json j{{"valid", why.empty()},
         {"kind", kind},
         {"reason", why.empty() ? "ok" : why},
         {"expires_at", wire_time(t.expires_at)},
         {"profile", t.profile}};
  if (!t.client_id.empty()) j["client_id"] = t.client_id;
  if (t.kind != token_kind::profile) {
    auto g = grants_.find(t.grant_id);
    bool current = g != grants_.end() && (g->second.access == token || g->second.refresh == token);
    j["current"] = current;
  }
  return j;
}

bool state::expire(std::string_view token) {
  auto* t = find_token(token);
  if (!t) return false;
  t->expires_at = now_() - std::chrono::seconds{1};
  return true;
}

void state::record_event(std::string type, std::string_view presented_refresh, json extra) {
  using namespace std::chrono;
  json e{{"t_us", duration_cast<microseconds>(now_().time_since_epoch()).count()},
         {"type", std::move(type)},
         {"refresh_token_fp", token_fp(presented_refresh)}};
  for (auto& [k, v] : extra.items()) e[k] = v;
  if (events_.size() >= 100000) events_.erase(events_.begin(), events_.begin() + 10000);
  events_.push_back(std::move(e));
}

json state::secrets() const {
  json out = json::array();
  auto add = [&](std::string_view kind, const std::string& value) {
    if (!value.empty()) out.push_back({{"kind", kind}, {"value", value}});
  };
  for (const auto& [value, t] : tokens_)
    add(t.kind == token_kind::profile  ? "profile_token"
        : t.kind == token_kind::access ? "access_token"
                                       : "refresh_token",
        value);
  for (const auto& [code, c] : codes_) add("authorization_code", code);
  for (const auto& [id, app] : apps_) add("client_secret", app.client_secret);
  for (const auto& [user, p] : profiles_) add("password", p.password);
  return out;
}

json state::events(std::int64_t since_us) const {
  json out = json::array();
  for (const auto& e : events_)
    if (e["t_us"].get<std::int64_t>() >= since_us) out.push_back(e);
  return out;
}

void state::count_request(std::string_view path) {
  constexpr std::string_view status_prefix = "/request-status/";
  constexpr std::size_t max_paths = 1000;  // scanners must not grow the map without bound
  std::string key(path.starts_with(status_prefix) ? "/request-status/{commandId}" : path);
  auto it = counters_.requests.find(key);
  if (it == counters_.requests.end() && counters_.requests.size() >= max_paths) key = "(other)";
  ++counters_.requests[key];
}

json state::stats() const {
  const counters& c = counters_;
  json requests = json::object();
  for (const auto& [path, n] : c.requests) requests[path] = n;
  return json{{"authentications", c.authentications},
              {"authentication_failures", c.authentication_failures},
              {"grants", c.grants},
              {"refreshes", c.refreshes},
              {"refresh_rejected", c.refresh_rejected},
              {"rejected_tokens", c.rejected_tokens},
              {"codes_issued", c.codes_issued},
              {"acks_sent", c.acks_sent},
              {"ws_connections", c.ws_connections},
              {"ws_open", c.ws_open},
              {"commands", c.commands},
              {"faults_applied", c.faults_applied},
              {"connections", c.connections},
              {"open_connections", c.open_connections},
              {"requests", requests}};
}

}  // namespace tokenbroker::sim
