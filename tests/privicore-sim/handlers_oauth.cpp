// OAuth application endpoints and the authorization-code grant (PROTOCOL.md §5.7–§5.14, §6).
#include "handlers.hpp"

namespace tokenbroker::sim {
namespace {

using json = nlohmann::json;

reply fail(const request& req, const failure& f) {
  return reply{error_response(req, f)};
}

reply malformed_form(const request& req) {
  return reply{error_response(req, 422, "http.malformed_form", "malformed form body")};
}

// Header C (PROTOCOL.md §2): Basic base64(clientId:clientSecret).
outcome<const application*> client_of(context& ctx, const request& req) {
  auto creds = basic_credentials(req);
  if (!creds)
    return failure{401, "oauth.invalid_client", "missing or malformed client credentials"};
  return ctx.st.authenticate_client(creds->first, creds->second);
}

json token_body(const oauth_token_issue& t) {
  return json{{"clientId", t.client_id},
              {"token", t.access},
              {"refreshToken", t.refresh},
              {"type", "bearer"},
              {"scope", "all"},
              {"expiresAt", wire_time(t.expires_at)},
              {"refreshTokenExpiresAt", wire_time(t.refresh_expires_at)}};
}

std::vector<std::string> split_scopes(const http::form& f) {
  auto scopes = f.get_all("scopes[]");
  if (auto list = f.get("scopes")) {
    std::size_t start = 0;
    while (start <= list->size()) {
      auto comma = list->find(',', start);
      auto item =
          list->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!item.empty()) scopes.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return scopes;
}

}  // namespace

// POST /profile/oauth-application-register: 202 + command id, which is the applicationId; the
// configuration is retrievable after the ack (PROTOCOL.md §5.7).
awaitable<reply> handle_register_app(context& ctx, const request& req) {
  auto profile = ctx.st.profile_of(header(req, "X-DPT-AUTHORIZATION"));
  if (!profile) co_return fail(req, profile.error());
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto name = f->get("name").value_or(""), redirect = f->get("redirectUri").value_or("");
  if (name.empty() || redirect.empty())
    co_return reply{
        error_response(req, 422, "oauth.validation", "name and redirectUri are required")};
  auto id = ctx.st.register_app(*profile, name, redirect, split_scopes(*f));
  auto accepted = co_await ctx.accept_command(req, id);
  co_return reply{std::move(accepted)};
}

// POST /profile/retrieve-oauth-application-configuration: client id and secret, once; a second
// call is 422 oauth.already_retrieved, before the register ack 404 (PROTOCOL.md §5.8).
awaitable<reply> handle_app_configuration(context& ctx, const request& req) {
  auto profile = ctx.st.profile_of(header(req, "X-DPT-AUTHORIZATION"));
  if (!profile) co_return fail(req, profile.error());
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto app = ctx.st.retrieve_app_config(*profile, f->get("applicationId").value_or(""));
  if (!app) co_return fail(req, app.error());
  const application& a = **app;
  co_return reply{json_response(req, 200,
                                {{"applicationId", a.id},
                                 {"clientId", a.client_id},
                                 {"clientSecret", a.client_secret},
                                 {"redirectUri", a.redirect_uri},
                                 {"scopes", a.scopes}})};
}

// GET /profile/retrieve-oauth-application-list: the profile's acked applications (§5.13).
awaitable<reply> handle_app_list(context& ctx, const request& req) {
  auto profile = ctx.st.profile_of(header(req, "X-DPT-AUTHORIZATION"));
  if (!profile) co_return fail(req, profile.error());
  json items = json::array();
  for (const application* a : ctx.st.apps_of(*profile))
    items.push_back({{"applicationId", a->id},
                     {"name", a->name},
                     {"clientId", a->client_id},
                     {"redirectUri", a->redirect_uri},
                     {"scopes", a->scopes},
                     {"createdAt", wire_time(a->created)}});
  auto count = items.size();
  co_return reply{
      json_response(req, 200, {{"items", std::move(items)}, {"meta", {{"count", count}}}})};
}

// GET /profile/oauth-application-request-authorization-code?client_id=&nonce=&scope[]=: 202 +
// request id; an unknown client or a reused nonce rejects the command (status 3) (§5.9).
awaitable<reply> handle_request_code(context& ctx, const request& req) {
  auto profile = ctx.st.profile_of(header(req, "X-DPT-AUTHORIZATION"));
  if (!profile) co_return fail(req, profile.error());
  auto q = query_form(req);
  if (!q) co_return malformed_form(req);
  auto id = ctx.st.request_code(*profile, q->get("client_id").value_or(""),
                                q->get("nonce").value_or(""), q->get_all("scope[]"));
  if (!id) co_return fail(req, id.error());
  auto accepted = co_await ctx.accept_command(req, *id);
  co_return reply{std::move(accepted)};
}

// POST /oauth-application/retrieve-authorization-code: header C, form id + nonce → the code, once
// (PROTOCOL.md §5.10). 401 bad client, 404 unknown/unacked id, 422 nonce mismatch or repeat.
awaitable<reply> handle_retrieve_code(context& ctx, const request& req) {
  auto app = client_of(ctx, req);
  if (!app) co_return fail(req, app.error());
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto code = ctx.st.retrieve_code(**app, f->get("id").value_or(""), f->get("nonce").value_or(""));
  if (!code) co_return fail(req, code.error());
  co_return reply{json_response(req, 200,
                                {{"clientId", code->client_id},
                                 {"nonce", code->nonce},
                                 {"authorizationCode", code->code},
                                 {"expiresAt", wire_time(code->expires_at)}})};
}

// POST /oauth-application/obtain-access-token: header C, form authorization_code → tokens
// (PROTOCOL.md §5.11). Codes are single-use and expire: 401 otherwise.
awaitable<reply> handle_obtain_token(context& ctx, const request& req) {
  auto app = client_of(ctx, req);
  if (!app) co_return fail(req, app.error());
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto t = ctx.st.obtain_token(**app, f->get("authorization_code").value_or(""));
  if (!t) co_return fail(req, t.error());
  co_return reply{json_response(req, 200, token_body(*t))};
}

// POST /oauth-application/refresh-access-token: header A (raw access token), form refresh_token;
// 200 with new tokens or 202 with an empty body, per switch (PROTOCOL.md §5.12, §7.3 #18).
awaitable<reply> handle_refresh(context& ctx, const request& req) {
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  bool with_tokens = ctx.sw.refresh_status == 200;
  auto t = ctx.st.refresh(basic_raw(req), f->get("refresh_token").value_or(""), with_tokens);
  if (!t) co_return fail(req, t.error());
  if (!with_tokens || !*t) {
    response res{http::status::accepted, req.version()};
    res.set(http::field::server, "privicore-sim");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_return reply{std::move(res)};
  }
  co_return reply{json_response(req, 200, token_body(**t))};
}

// GET|POST /oauth-application/retrieve-oauth-application-scope: header A → {"scopes":["all"]}.
// The method is UNKNOWN (PROTOCOL.md §5.14), so both are served.
awaitable<reply> handle_app_scope(context& ctx, const request& req) {
  auto profile = ctx.st.access_profile(basic_raw(req));
  if (!profile) co_return fail(req, profile.error());
  co_return reply{json_response(req, 200, {{"scopes", json::array({"all"})}})};
}

}  // namespace tokenbroker::sim
