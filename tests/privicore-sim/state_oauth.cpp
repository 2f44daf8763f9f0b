// OAuth applications, authorization codes, grants, refresh and the data-plane token check.
#include <algorithm>

#include "core/random.hpp"
#include "state.hpp"

namespace tokenbroker::sim {

using json = nlohmann::json;

outcome<void> state::add_app(const std::string& owner, const std::string& client_id,
                             const std::string& client_secret) {
  if (!profiles_.count(owner))
    return failure{422, "sim.unknown_owner", "--app owner '" + owner + "' is not a --profile"};
  if (client_to_app_.count(client_id))
    return failure{409, "sim.duplicate_client", "client id '" + client_id + "' seeded twice"};
  application a;
  a.id = new_uuid();
  a.owner = owner;
  a.name = "seeded-" + client_id;
  a.redirect_uri = "https://localhost/callback";
  a.client_id = client_id;
  a.client_secret = client_secret;
  a.scopes = {"all"};
  a.created = now_();
  a.ready = true;
  a.retrieved = true;  // the secret is known from the command line, not from the API
  client_to_app_[client_id] = a.id;
  apps_[a.id] = std::move(a);
  return {};
}

std::string state::register_app(const std::string& profile, std::string_view name,
                                std::string_view redirect_uri, std::vector<std::string> scopes) {
  // PROTOCOL.md §5.7: the command id IS the applicationId.
  auto id = new_command(command_kind::register_app, profile, command_status::succeeded,
                        "OAuth application registered");
  application a;
  a.id = id;
  a.owner = profile;
  a.name = name;
  a.redirect_uri = redirect_uri;
  a.scopes = std::move(scopes);
  a.client_id = new_uuid();
  a.client_secret = random_base64url(32);
  a.created = now_();
  client_to_app_[a.client_id] = id;
  apps_[id] = std::move(a);
  return id;
}

outcome<const application*> state::retrieve_app_config(const std::string& profile,
                                                       std::string_view app_id) {
  if (app_id.empty()) return failure{422, "oauth.validation", "applicationId is required"};
  auto it = apps_.find(app_id);
  // Not yet acked looks the same as unknown: the read model has not seen it (README.md).
  if (it == apps_.end() || !it->second.ready || it->second.owner != profile)
    return failure{404, "oauth.application_not_found", "no such OAuth application"};
  if (it->second.retrieved)
    return failure{422, "oauth.already_retrieved",
                   "the configuration of this application was already retrieved"};
  it->second.retrieved = true;
  return &it->second;
}

std::vector<const application*> state::apps_of(const std::string& profile) const {
  std::vector<const application*> out;
  for (const auto& [id, a] : apps_)
    if (a.owner == profile && a.ready) out.push_back(&a);
  return out;
}

outcome<std::string> state::request_code(const std::string& profile, std::string_view client_id,
                                         std::string_view nonce,
                                         const std::vector<std::string>& scopes) {
  if (client_id.empty() || nonce.empty() || scopes.empty())
    return failure{422, "oauth.validation", "client_id, nonce and scope[] are required"};
  // Business validation is asynchronous (PROTOCOL.md §3.2): problems reject the command.
  command_status planned = command_status::succeeded;
  std::string body = "Authorization code requested";
  auto app = client_to_app_.find(client_id);
  auto& used = nonces_[std::string(client_id)];
  if (app == client_to_app_.end() || !apps_[app->second].ready) {
    planned = command_status::rejected;
    body = "oauth.application_not_found";
  } else if (std::find(used.begin(), used.end(), nonce) != used.end()) {
    planned = command_status::rejected;
    body = "oauth.nonce_already_used";
  }
  used.emplace_back(nonce);
  auto id = new_command(command_kind::request_code, profile, planned, body);
  code_requests_[id] = code_request{std::string(client_id), std::string(nonce), profile};
  return id;
}

outcome<const application*> state::authenticate_client(std::string_view client_id,
                                                       std::string_view secret) {
  auto it = client_to_app_.find(client_id);
  if (it == client_to_app_.end() || apps_[it->second].client_secret != secret || secret.empty())
    return failure{401, "oauth.invalid_client", "invalid client credentials"};
  return &apps_[it->second];
}

outcome<code_issue> state::retrieve_code(const application& app, std::string_view request_id,
                                         std::string_view nonce) {
  if (request_id.empty() || nonce.empty())
    return failure{422, "oauth.validation", "id and nonce are required"};
  auto it = code_requests_.find(request_id);
  if (it == code_requests_.end() || it->second.client_id != app.client_id || !it->second.ready)
    return failure{404, "oauth.request_not_found", "no such authorization request"};
  if (it->second.nonce != nonce) return failure{422, "oauth.nonce_mismatch", "nonce mismatch"};
  if (it->second.retrieved)
    return failure{422, "oauth.code_already_retrieved", "the code was already retrieved"};
  it->second.retrieved = true;
  std::string code = random_base64url(24);
  auto expires = now_() + sw_.code_ttl;
  codes_[code] = auth_code{app.client_id, it->second.profile, expires};
  ++counters_.codes_issued;
  return code_issue{app.client_id, it->second.nonce, code, expires};
}

oauth_token_issue state::issue_grant_tokens(const std::string& grant_id, grant& g) {
  g.access =
      issue_token(token_kind::access, g.profile, sw_.access_token_ttl, grant_id, g.client_id);
  g.refresh =
      issue_token(token_kind::refresh, g.profile, sw_.refresh_token_ttl, grant_id, g.client_id);
  return oauth_token_issue{g.client_id, g.access, g.refresh, tokens_[g.access].expires_at,
                           tokens_[g.refresh].expires_at};
}

outcome<oauth_token_issue> state::obtain_token(const application& app, std::string_view code) {
  if (code.empty()) return failure{422, "oauth.validation", "authorization_code is required"};
  auto it = codes_.find(code);
  std::string why = it == codes_.end()                      ? "unknown"
                    : it->second.client_id != app.client_id ? "issued to another client"
                    : it->second.used                       ? "already used"
                    : now_() >= it->second.expires_at       ? "expired"
                                                            : "";
  if (!why.empty()) return failure{401, "oauth.invalid_authorization_code", "code " + why};
  it->second.used = true;
  auto grant_id = new_uuid();
  grant& g = grants_[grant_id];
  g.client_id = app.client_id;
  g.profile = it->second.profile;
  auto issue = issue_grant_tokens(grant_id, g);
  ++counters_.grants;
  record_event("grant", issue.refresh, {{"client_id", app.client_id}, {"grant_id", grant_id}});
  return issue;
}

outcome<std::optional<oauth_token_issue>> state::refresh(std::string_view access_token,
                                                         std::string_view refresh_token,
                                                         bool answer_with_tokens) {
  if (refresh_token.empty()) return failure{422, "oauth.validation", "refresh_token is required"};
  record_event("refresh_received", refresh_token, json::object());
  auto reject = [&](std::string error, std::string reason) {
    ++counters_.refresh_rejected;
    record_event("refresh_rejected", refresh_token, {{"reason", reason}});
    return reject_token(std::move(error), std::move(reason));
  };
  token_record* rt = find_token(refresh_token);
  if (!rt || rt->kind != token_kind::refresh)
    return reject("oauth.invalid_refresh_token", "unknown refresh token");
  grant& g = grants_[rt->grant_id];
  if (rt->state == token_state::superseded) {
    if (sw_.reuse_revokes_grant) revoke_grants(g.client_id);
    return reject("oauth.invalid_refresh_token", "refresh token already used");
  }
  if (g.revoked || rt->state == token_state::revoked)
    return reject("oauth.invalid_refresh_token", "refresh token revoked");
  if (now_() >= rt->expires_at)
    return reject("oauth.invalid_refresh_token", "refresh token expired");
  // Header A: the grant's current access token, even if expired (a broker refreshes near or
  // after expiry); a replaced one only while it is still alive (invalidate_old_access off).
  token_record* at = find_token(access_token);
  if (access_token.empty()) return reject("oauth.invalid_access_token", "missing access token");
  if (!at || at->kind != token_kind::access || at->grant_id != rt->grant_id)
    return reject("oauth.invalid_access_token", "access token unknown or of another grant");
  if (at->state != token_state::active)
    return reject("oauth.invalid_access_token", at->state == token_state::revoked
                                                    ? "access token revoked"
                                                    : "access token superseded");
  if (g.access != access_token && now_() >= at->expires_at)
    return reject("oauth.invalid_access_token", "access token replaced and expired");

  ++counters_.refreshes;
  if (!answer_with_tokens) {
    // 202 mode (PROTOCOL.md §5.12, OFF): nothing observable; the current token lives longer.
    tokens_[g.access].expires_at = now_() + sw_.access_token_ttl;
    record_event("refresh_answered", refresh_token,
                 {{"new_refresh_token_fp", token_fp(g.refresh)}, {"status", 202}});
    return std::optional<oauth_token_issue>{};
  }
  auto old_access = g.access;
  g.access =
      issue_token(token_kind::access, g.profile, sw_.access_token_ttl, rt->grant_id, g.client_id);
  if (sw_.invalidate_old_access) tokens_[old_access].state = token_state::superseded;
  if (sw_.rotate_refresh) {
    rt->state = token_state::superseded;
    g.refresh = issue_token(token_kind::refresh, g.profile, sw_.refresh_token_ttl, rt->grant_id,
                            g.client_id);
  }
  oauth_token_issue issue{g.client_id, g.access, g.refresh, tokens_[g.access].expires_at,
                          tokens_[g.refresh].expires_at};
  record_event("refresh_answered", refresh_token,
               {{"new_refresh_token_fp", token_fp(g.refresh)},
                {"access_token_fp", token_fp(g.access)},
                {"status", 200}});
  return std::optional<oauth_token_issue>{std::move(issue)};
}

outcome<std::string> state::access_profile(std::string_view token) {
  if (token.empty())
    return failure{401, "oauth.unauthorized", "missing X-DPT-AUTHORIZATION header"};
  auto* t = find_token(token);
  if (!t || t->kind != token_kind::access)
    return reject_token("oauth.invalid_access_token", t ? "is not an access token" : "unknown");
  if (auto why = why_invalid(*t); !why.empty())
    return reject_token("oauth.invalid_access_token", why);
  if (grants_[t->grant_id].revoked) return reject_token("oauth.invalid_access_token", "revoked");
  return t->profile;
}

outcome<std::string> state::data_command(const std::string& profile, std::string_view name) {
  bool never = name == "never";
  if (name != "succeeded" && name != "rejected" && !never)
    return failure{422, "data.validation", "outcome must be succeeded, rejected or never"};
  auto planned = name == "rejected" ? command_status::rejected : command_status::succeeded;
  auto id = new_command(command_kind::data, profile, planned,
                        name == "rejected" ? "data.command_rejected" : "Command completed");
  commands_[id].never = never;
  return id;
}

std::size_t state::revoke_grants(std::string_view client_id) {
  std::size_t n = 0;
  for (auto& [id, g] : grants_)
    if (g.client_id == client_id && !g.revoked) {
      g.revoked = true;
      ++n;
    }
  for (auto& [value, t] : tokens_)
    if (t.client_id == client_id && t.state == token_state::active) t.state = token_state::revoked;
  return n;
}

}  // namespace tokenbroker::sim
