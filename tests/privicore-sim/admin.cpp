// The admin API under /_sim/: observe and steer the simulator from tests (README.md).
#include <charconv>

#include "core/log.hpp"
#include "handlers.hpp"

namespace tokenbroker::sim {
namespace {

using json = nlohmann::json;

std::optional<json> json_body(const request& req) {
  if (req.body().empty()) return json::object();
  auto j = json::parse(req.body(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

reply bad_json(const request& req) {
  return reply{error_response(req, 400, "sim.bad_request", "expected a JSON object body")};
}

std::string string_field(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

}  // namespace

// GET /_sim/stats: every counter (README.md lists them).
awaitable<reply> handle_admin_stats(context& ctx, const request& req) {
  co_return reply{json_response(req, 200, ctx.st.stats())};
}

// GET|PUT /_sim/config: the live switches; PUT applies the given ones (all or nothing).
awaitable<reply> handle_admin_config(context& ctx, const request& req) {
  if (req.method() == http::verb::put) {
    auto body = json_body(req);
    if (!body) co_return bad_json(req);
    switches next = ctx.sw;
    for (auto& [key, value] : body->items()) {
      if (key == "log_level" && value.is_string()) {
        if (auto l = log::parse_level(value.get<std::string>())) {
          log::configure(*l, ctx.opts.log_format);
          continue;
        }
      }
      if (auto err = set_switch(next, key, value))
        co_return reply{error_response(req, 400, "sim.bad_config", *err)};
    }
    ctx.sw = next;
    log::info("config changed: {}", body->dump());
  }
  co_return reply{json_response(req, 200, to_json(ctx.sw))};
}

// GET|POST|DELETE /_sim/faults: list, add one, clear all.
awaitable<reply> handle_admin_faults(context& ctx, const request& req) {
  if (req.method() == http::verb::delete_) {
    ctx.faults.clear();
  } else if (req.method() == http::verb::post) {
    auto body = json_body(req);
    if (!body) co_return bad_json(req);
    if (auto err = ctx.faults.add(*body))
      co_return reply{error_response(req, 400, "sim.bad_fault", *err)};
    log::info("fault added: {}", body->dump());
  }
  co_return reply{json_response(req, 200, {{"faults", ctx.faults.to_json()}})};
}

// POST /_sim/check {"token"}: the simulator's verdict on a token.
awaitable<reply> handle_admin_check(context& ctx, const request& req) {
  auto body = json_body(req);
  if (!body) co_return bad_json(req);
  co_return reply{json_response(req, 200, ctx.st.check(string_field(*body, "token")))};
}

// POST /_sim/revoke-grants {"client_id"}: revokes every access and refresh token of the client.
awaitable<reply> handle_admin_revoke_grants(context& ctx, const request& req) {
  auto body = json_body(req);
  if (!body) co_return bad_json(req);
  auto n = ctx.st.revoke_grants(string_field(*body, "client_id"));
  co_return reply{json_response(req, 200, {{"revoked_grants", n}})};
}

// GET /_sim/events[?since_us=T]: token events (grant, refresh_received/answered/rejected).
awaitable<reply> handle_admin_events(context& ctx, const request& req) {
  std::int64_t since = 0;
  if (auto q = query_form(req)) {
    auto text = q->get("since_us").value_or("0");
    std::from_chars(text.data(), text.data() + text.size(), since);
  }
  co_return reply{json_response(req, 200, ctx.st.events(since))};
}

// POST /_sim/expire {"token"}: makes a token expired now (tests of expiry without waiting).
awaitable<reply> handle_admin_expire(context& ctx, const request& req) {
  auto body = json_body(req);
  if (!body) co_return bad_json(req);
  bool found = ctx.st.expire(string_field(*body, "token"));
  if (!found) co_return reply{error_response(req, 404, "sim.unknown_token", "no such token")};
  co_return reply{json_response(req, 200, {{"expired", true}})};
}

// GET /_sim/secrets: every secret issued or given (leak tests look for them everywhere).
awaitable<reply> handle_admin_secrets(context& ctx, const request& req) {
  co_return reply{json_response(req, 200, {{"secrets", ctx.st.secrets()}})};
}

}  // namespace tokenbroker::sim
