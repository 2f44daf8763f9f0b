// The route table: every endpoint of the simulator, its methods and its handler.
#include <array>
#include <initializer_list>
#include <vector>

#include "handlers.hpp"

namespace tokenbroker::sim {
namespace {

using http::verb;

struct route_entry {
  std::string_view path;
  bool prefix;  // path + "{id}"
  std::vector<verb> methods;
  handler_fn fn;  // nullptr: served by the session (streamed upload)
};

const std::vector<route_entry>& routes() {
  static const std::vector<route_entry> table = {
      {"/health", false, {verb::get}, handle_health},
      {"/profile/authenticate", false, {verb::post}, handle_authenticate},
      {"/profile/authorization-token/expiry", false, {verb::post}, handle_token_expiry},
      {"/profile/reauthorize-authorization-token", false, {verb::post}, handle_reauthorize},
      {"/profile/revoke-authorization-token", false, {verb::post}, handle_revoke_token},
      {"/profile/register-profile", false, {verb::post}, handle_register_profile},
      {"/request-status/", true, {verb::get, verb::post}, handle_request_status},
      {"/profile/oauth-application-register", false, {verb::post}, handle_register_app},
      {"/profile/retrieve-oauth-application-configuration",
       false,
       {verb::post},
       handle_app_configuration},
      {"/profile/retrieve-oauth-application-list", false, {verb::get}, handle_app_list},
      {"/profile/oauth-application-request-authorization-code",
       false,
       {verb::get},
       handle_request_code},
      {"/oauth-application/retrieve-authorization-code", false, {verb::post}, handle_retrieve_code},
      {"/oauth-application/obtain-access-token", false, {verb::post}, handle_obtain_token},
      {"/oauth-application/refresh-access-token", false, {verb::post}, handle_refresh},
      {"/oauth-application/retrieve-oauth-application-scope",
       false,
       {verb::get, verb::post},
       handle_app_scope},
      {"/data-token/echo",
       false,
       {verb::get, verb::post, verb::put, verb::delete_, verb::patch},
       handle_echo},
      {"/data-token/upload", false, {verb::post}, nullptr},
      {"/data-token/download", false, {verb::get}, handle_download},
      {"/data-token/command", false, {verb::post}, handle_data_command},
      {"/_sim/stats", false, {verb::get}, handle_admin_stats},
      {"/_sim/config", false, {verb::get, verb::put}, handle_admin_config},
      {"/_sim/faults", false, {verb::get, verb::post, verb::delete_}, handle_admin_faults},
      {"/_sim/check", false, {verb::post}, handle_admin_check},
      {"/_sim/revoke-grants", false, {verb::post}, handle_admin_revoke_grants},
      {"/_sim/events", false, {verb::get}, handle_admin_events},
      {"/_sim/expire", false, {verb::post}, handle_admin_expire},
      {"/_sim/secrets", false, {verb::get}, handle_admin_secrets},
  };
  return table;
}

bool matches(const route_entry& r, std::string_view path) {
  return r.prefix ? path.starts_with(r.path) && path.size() > r.path.size() : path == r.path;
}

}  // namespace

bool is_streamed_upload(verb method, std::string_view path) {
  return method == verb::post && path == "/data-token/upload";
}

awaitable<reply> route(context& ctx, const request& req) {
  auto path = path_of(req.target());
  for (const auto& r : routes()) {
    if (!matches(r, path)) continue;
    for (verb m : r.methods)
      if (m == req.method() && r.fn) co_return co_await r.fn(ctx, req);
    std::string allow;
    for (verb m : r.methods) allow += (allow.empty() ? "" : ", ") + std::string(to_string(m));
    auto res = error_response(req, 405, "http.method_not_allowed", "method not allowed");
    res.set(http::field::allow, allow);
    co_return reply{std::move(res)};
  }
  co_return reply{error_response(req, 404, "http.not_found", "no such endpoint")};
}

}  // namespace tokenbroker::sim
