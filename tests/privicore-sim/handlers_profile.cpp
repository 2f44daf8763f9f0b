// Profile session endpoints, health and command status (PROTOCOL.md §5.1–§5.6, §5.15).
#include <charconv>

#include "handlers.hpp"

namespace tokenbroker::sim {
namespace {

using json = nlohmann::json;

// Header P (PROTOCOL.md §2): the raw profile token.
std::string profile_token(const request& req) {
  return header(req, "X-DPT-AUTHORIZATION");
}

reply malformed_form(const request& req) {
  return reply{error_response(req, 422, "http.malformed_form", "malformed form body")};
}

}  // namespace

// GET /health: liveness, no auth (PROTOCOL.md §5.1).
awaitable<reply> handle_health(context&, const request& req) {
  co_return reply{json_response(req, 200, {{"status", "ok"}})};
}

// POST /profile/authenticate: username + password → profile token (PROTOCOL.md §5.3).
awaitable<reply> handle_authenticate(context& ctx, const request& req) {
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto user = f->get("username").value_or(""), password = f->get("password").value_or("");
  if (user.empty() || password.empty())
    co_return reply{
        error_response(req, 422, "profile.validation", "username and password are required")};
  auto r = ctx.st.authenticate(user, password);
  if (!r) co_return reply{error_response(req, r.error())};
  co_return reply{json_response(
      req, 200, {{"authorizationToken", r->token}, {"expiresAt", wire_time(r->expires_at)}})};
}

// POST /profile/authorization-token/expiry: expiry of the token in header P (PROTOCOL.md §5.4).
awaitable<reply> handle_token_expiry(context& ctx, const request& req) {
  auto r = ctx.st.token_expiry(profile_token(req));
  if (!r) co_return reply{error_response(req, r.error())};
  co_return reply{json_response(req, 200, {{"expiresAt", wire_time(*r)}})};
}

// POST /profile/reauthorize-authorization-token: a new lifetime of `ttl` seconds; 200 with a new
// token (the old one is superseded) or 202 + command id, per switch (PROTOCOL.md §5.5, §7.3 #20).
awaitable<reply> handle_reauthorize(context& ctx, const request& req) {
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.sw.profile_token_ttl);
  if (auto text = f->get("ttl"); text && !text->empty()) {
    long long seconds = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
    if (ec != std::errc{} || p != text->data() + text->size() || seconds <= 0)
      co_return reply{error_response(req, 422, "profile.validation", "ttl must be seconds > 0")};
    ttl = std::chrono::seconds{seconds};
  }
  if (ctx.sw.reauthorize_status == 202) {
    auto id = ctx.st.reauthorize_command(profile_token(req), ttl);
    if (!id) co_return reply{error_response(req, id.error())};
    auto accepted = co_await ctx.accept_command(req, *id);
    co_return reply{std::move(accepted)};
  }
  auto r = ctx.st.reauthorize(profile_token(req), ttl);
  if (!r) co_return reply{error_response(req, r.error())};
  co_return reply{json_response(
      req, 200, {{"authorizationToken", r->token}, {"expiresAt", wire_time(r->expires_at)}})};
}

// POST /profile/revoke-authorization-token: the token in header P dies at once (PROTOCOL.md §5.6).
awaitable<reply> handle_revoke_token(context& ctx, const request& req) {
  auto r = ctx.st.revoke_profile_token(profile_token(req));
  if (!r) co_return reply{error_response(req, r.error())};
  co_return reply{json_response(req, 200, {{"revoked", true}})};
}

// POST /profile/register-profile: 202 + command id; the profile can authenticate after the ack
// (PROTOCOL.md §5.15). 409 when the username is taken.
awaitable<reply> handle_register_profile(context& ctx, const request& req) {
  auto f = body_form(req);
  if (!f) co_return malformed_form(req);
  auto id =
      ctx.st.register_profile(f->get("username").value_or(""), f->get("password").value_or(""));
  if (!id) co_return reply{error_response(req, id.error())};
  auto accepted = co_await ctx.accept_command(req, *id);
  co_return reply{std::move(accepted)};
}

// GET|POST /request-status/{commandId}: "started"|"succeeded"|"rejected" in the configured
// shape; 404 for an unknown id or one of another profile when header P is sent (PROTOCOL.md §5.2).
awaitable<reply> handle_request_status(context& ctx, const request& req) {
  auto allowed = ctx.sw.status_method;
  bool get = req.method() == http::verb::get;
  if ((allowed == status_methods::get && !get) || (allowed == status_methods::post && get)) {
    auto res = error_response(req, 405, "http.method_not_allowed", "method not allowed");
    res.set(http::field::allow, allowed == status_methods::get ? "GET" : "POST");
    co_return reply{std::move(res)};
  }
  auto id = path_of(req.target()).substr(std::string_view("/request-status/").size());
  const command* c = ctx.st.find_command(id);
  // The header is optional (PROTOCOL.md §7.2 #16); a valid one scopes the lookup to its profile,
  // an invalid one is ignored rather than refused.
  if (auto token = profile_token(req); c && !token.empty()) {
    auto p = ctx.st.peek_profile(token);
    if (p && c->kind != command_kind::register_profile && *p != c->profile) c = nullptr;
  }
  if (!c) co_return reply{error_response(req, 404, "command.not_found", "no such command")};
  co_return reply{json_response(req, 200, ctx.status_body(*c))};
}

}  // namespace tokenbroker::sim
