#include "privicore/requests.hpp"

#include "core/random.hpp"
#include "http/form.hpp"

#ifndef TOKENBROKER_VERSION
#define TOKENBROKER_VERSION "dev"
#endif

namespace tokenbroker::privicore {
namespace {

constexpr std::string_view form_type = "application/x-www-form-urlencoded";

http::request make(http::verb method, const http::url& api, std::string_view path,
                   std::string_view query = {}) {
  std::string target = api.join(path).path;
  if (!query.empty()) {
    target += '?';
    target += query;
  }
  http::request req{method, target, 11};
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "tokenbroker/" TOKENBROKER_VERSION);
  return req;
}

http::request make_post(const http::url& api, std::string_view path, const http::form& body) {
  auto req = make(http::verb::post, api, path);
  req.set(http::field::content_type, form_type);
  req.body() = body.encode();
  req.prepare_payload();
  return req;
}

void set_profile(http::request& req, const secret& profile) {
  req.set(profile_header, profile.reveal());
}

void set_basic(http::request& req, const secret& value) {
  secret header{"Basic " + value.reveal()};
  req.set(http::field::authorization, header.reveal());
}

std::string join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

}  // namespace

secret basic_credentials(const client_credentials& creds) {
  secret pair{creds.client_id + ":" + creds.client_secret.reveal()};
  return secret{base64_encode(pair.reveal())};
}

http::request build_health(const http::url& api) {
  return make(http::verb::get, api, "/health");
}

http::request build_authenticate(const http::url& api, std::string_view username,
                                 const secret& password) {
  http::form f;
  f.add("username", username).add("password", password.reveal());
  return make_post(api, "/profile/authenticate", f);
}

http::request build_token_expiry(const http::url& api, const secret& profile) {
  auto req = make_post(api, "/profile/authorization-token/expiry", {});
  set_profile(req, profile);
  return req;
}

http::request build_reauthorize(const http::url& api, const secret& profile,
                                std::chrono::seconds ttl) {
  http::form f;
  f.add("ttl", std::to_string(ttl.count()));
  auto req = make_post(api, "/profile/reauthorize-authorization-token", f);
  set_profile(req, profile);
  return req;
}

http::request build_revoke(const http::url& api, const secret& profile) {
  auto req = make_post(api, "/profile/revoke-authorization-token", {});
  set_profile(req, profile);
  return req;
}

http::request build_register_application(const http::url& api, const secret& profile,
                                         std::string_view name, std::string_view redirect_uri,
                                         const std::vector<std::string>& scopes) {
  http::form f;
  f.add("name", name).add("redirectUri", redirect_uri).add("scopes", join(scopes, ','));
  auto req = make_post(api, "/profile/oauth-application-register", f);
  set_profile(req, profile);
  return req;
}

http::request build_retrieve_configuration(const http::url& api, const secret& profile,
                                           std::string_view application_id) {
  http::form f;
  f.add("applicationId", application_id);
  auto req = make_post(api, "/profile/retrieve-oauth-application-configuration", f);
  set_profile(req, profile);
  return req;
}

http::request build_request_authorization_code(const http::url& api, const secret& profile,
                                               std::string_view client_id, std::string_view nonce,
                                               const std::vector<std::string>& scopes) {
  http::form q;
  q.add("client_id", client_id).add("nonce", nonce).add_array("scope", scopes);
  auto req = make(http::verb::get, api, "/profile/oauth-application-request-authorization-code",
                  q.encode());
  set_profile(req, profile);
  return req;
}

http::request build_retrieve_authorization_code(const http::url& api,
                                                const client_credentials& creds,
                                                std::string_view request_id,
                                                std::string_view nonce) {
  http::form f;
  f.add("id", request_id).add("nonce", nonce);
  auto req = make_post(api, "/oauth-application/retrieve-authorization-code", f);
  set_basic(req, basic_credentials(creds));
  return req;
}

http::request build_obtain_access_token(const http::url& api, const client_credentials& creds,
                                        const secret& code) {
  http::form f;
  f.add("authorization_code", code.reveal());
  auto req = make_post(api, "/oauth-application/obtain-access-token", f);
  set_basic(req, basic_credentials(creds));
  return req;
}

http::request build_refresh_access_token(const http::url& api, const secret& access_token,
                                         const secret& refresh_token) {
  http::form f;
  f.add("refresh_token", refresh_token.reveal());
  auto req = make_post(api, "/oauth-application/refresh-access-token", f);
  set_basic(req, access_token);  // raw, as-is: the server looks the value up directly (§5.12)
  return req;
}

http::request build_list_applications(const http::url& api, const secret& profile) {
  auto req = make(http::verb::get, api, "/profile/retrieve-oauth-application-list");
  set_profile(req, profile);
  return req;
}

http::request build_application_scope(const http::url& api, const secret& access_token,
                                      std::optional<std::string_view> application_id,
                                      http::verb method) {
  constexpr std::string_view path = "/oauth-application/retrieve-oauth-application-scope";
  http::form f;
  if (application_id) f.add("applicationId", *application_id);
  auto req = method == http::verb::post ? make_post(api, path, f)
                                        : make(method, api, path, f.encode());
  set_basic(req, access_token);
  return req;
}

http::request build_command_status(const http::url& api, std::string_view command_id,
                                   const secret* profile, http::verb method) {
  auto req = make(method, api, "/request-status/" + http::url_encode(command_id));
  if (method == http::verb::post) {
    req.set(http::field::content_type, "application/json");
    req.body() = "{}";
    req.prepare_payload();
  }
  if (profile && !profile->empty()) set_profile(req, *profile);
  return req;
}

}  // namespace tokenbroker::privicore
