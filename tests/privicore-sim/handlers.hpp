// Request handlers, one per endpoint; the route table (router.cpp) maps paths and methods to them.
#pragma once

#include "context.hpp"
#include "http_util.hpp"

namespace tokenbroker::sim {

using handler_fn = awaitable<reply> (*)(context&, const request&);

// handlers_profile.cpp
awaitable<reply> handle_health(context&, const request&);
awaitable<reply> handle_authenticate(context&, const request&);
awaitable<reply> handle_token_expiry(context&, const request&);
awaitable<reply> handle_reauthorize(context&, const request&);
awaitable<reply> handle_revoke_token(context&, const request&);
awaitable<reply> handle_register_profile(context&, const request&);
awaitable<reply> handle_request_status(context&, const request&);

// handlers_oauth.cpp
awaitable<reply> handle_register_app(context&, const request&);
awaitable<reply> handle_app_configuration(context&, const request&);
awaitable<reply> handle_app_list(context&, const request&);
awaitable<reply> handle_request_code(context&, const request&);
awaitable<reply> handle_retrieve_code(context&, const request&);
awaitable<reply> handle_obtain_token(context&, const request&);
awaitable<reply> handle_refresh(context&, const request&);
awaitable<reply> handle_app_scope(context&, const request&);

// handlers_data.cpp (the streamed upload is served by the session itself)
awaitable<reply> handle_echo(context&, const request&);
awaitable<reply> handle_download(context&, const request&);
awaitable<reply> handle_data_command(context&, const request&);
/// Header X-DPT-AUTHORIZATION with a valid OAuth access token; the grantor profile or a 401.
template <class Fields>
outcome<std::string> data_plane_profile(context& ctx, const http::bhttp::header<true, Fields>& h) {
  auto it = h.find("X-DPT-AUTHORIZATION");
  if (it == h.end()) return ctx.st.access_profile({});
  return ctx.st.access_profile(std::string_view(it->value().data(), it->value().size()));
}

// admin.cpp (/_sim/*)
awaitable<reply> handle_admin_stats(context&, const request&);
awaitable<reply> handle_admin_config(context&, const request&);
awaitable<reply> handle_admin_faults(context&, const request&);
awaitable<reply> handle_admin_check(context&, const request&);
awaitable<reply> handle_admin_revoke_grants(context&, const request&);
awaitable<reply> handle_admin_events(context&, const request&);
awaitable<reply> handle_admin_expire(context&, const request&);
awaitable<reply> handle_admin_secrets(context&, const request&);

/// Finds the handler for `req` and runs it: 404 for an unknown path, 405 for a wrong method.
awaitable<reply> route(context& ctx, const request& req);
/// True for the one endpoint whose body the session streams instead of buffering.
bool is_streamed_upload(http::verb method, std::string_view path);

}  // namespace tokenbroker::sim
