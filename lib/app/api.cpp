#include "app/api.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "app/login_api.hpp"
#include "core/log.hpp"
#include "http/form.hpp"

namespace tokenbroker::app {
namespace {

using json = nlohmann::json;
using http::status;

json optional_time(const std::optional<sys_seconds>& t) {
  return t ? json(format_timestamp(*t)) : json(nullptr);
}

json status_object(const broker::credential_status& s) {
  json j{{"name", s.name},
         {"provider", s.provider},
         {"state", std::string(broker::to_string(s.state))},
         {"expires_at", optional_time(s.expires_at)},
         {"refresh_at", optional_time(s.refresh_at)},
         {"last_refresh_at", optional_time(s.last_refresh_at)},
         {"last_error", s.last_error.empty() ? json(nullptr) : json(s.last_error)}};
  if (!s.cluster_role.empty()) {  // with [cluster] only
    j["cluster_role"] = s.cluster_role;
    j["lock_handovers"] = s.lock_handovers;
  }
  return j;
}

http::response respond(status code, const json& body, unsigned version) {
  return http::json_response(code, body.dump(), version);
}

// JSON string escaping as nlohmann::json::dump does it, for text known to be ASCII.
void append_escaped(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  while (!s.empty()) {
    // The run that needs no escape (all of a token, as a rule) is copied in one go.
    std::size_t run = 0;
    while (run < s.size() && static_cast<unsigned char>(s[run]) >= 0x20 && s[run] != '"' &&
           s[run] != '\\')
      ++run;
    out.append(s.data(), run);
    if (run == s.size()) return;
    char c = s[run];
    s.remove_prefix(run + 1);
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:  // the other control characters
        out += "\\u00";
        out += hex[u >> 4];
        out += hex[u & 0xf];
    }
  }
}

bool ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// expires_at as text, formatted once per token rather than once per request.
const std::string& timestamp_text(sys_seconds t) {
  thread_local sys_seconds last{};
  thread_local std::string text = format_timestamp(last);
  if (t != last) {
    text = format_timestamp(t);
    last = t;
  }
  return text;
}

}  // namespace

std::string token_json(const broker::token_view& t, sys_seconds now) {
  const std::string& token = t.access_token.reveal();
  auto expires_in = std::max<std::int64_t>((t.expires_at - now).count(), 0);
  if (!ascii(token) || !ascii(t.token_type) || !ascii(t.scope)) {
    // Rare: nlohmann checks the UTF-8 (and throws on bad bytes: a 500, never broken JSON).
    json body{{"access_token", token},
              {"token_type", t.token_type},
              {"expires_at", format_timestamp(t.expires_at)},
              {"expires_in", expires_in},
              {"scope", t.scope}};
    return body.dump() + '\n';
  }
  // Written straight out, keys in nlohmann's (sorted) order: building a json object and
  // dumping it was a tenth of the token path's CPU (bench/analysis.md).
  std::string body;
  body.reserve(token.size() + t.token_type.size() + t.scope.size() + 112);
  body += "{\"access_token\":\"";
  append_escaped(body, token);
  body += "\",\"expires_at\":\"";
  body += timestamp_text(t.expires_at);
  body += "\",\"expires_in\":";
  body += std::to_string(expires_in);
  body += ",\"scope\":\"";
  append_escaped(body, t.scope);
  body += "\",\"token_type\":\"";
  append_escaped(body, t.token_type);
  body += "\"}\n";
  return body;
}

http::response error_for(const error& e, unsigned version) {
  if (e.code == errc::invalid_argument)
    return http::error_response(status::bad_request, "bad_request", e.message, version);
  auto res = http::error_response(status::service_unavailable, "token_unavailable", e.message,
                                  version);
  auto retry = std::max<std::int64_t>(e.retry_after.count(), 1);
  res.set(http::field::retry_after, std::to_string(retry));
  return res;
}

std::string status_json(const broker::credential_status& s) { return status_object(s).dump(); }

api::api(broker::registry& reg, metrics::registry& metrics, api_options options)
    : registry_(reg), metrics_(metrics), options_(options) {
  using http::verb;
  auto bind = [this](auto fn) {
    return [this, fn](http::request_context& ctx) { return (this->*fn)(ctx); };
  };
  router_.add(verb::get, "/v1/token/{name}", bind(&api::handle_token));
  router_.add(verb::get, "/v1/credentials", bind(&api::handle_credentials));
  router_.add(verb::post, "/v1/credentials/{name}/refresh", bind(&api::handle_refresh));
  router_.add(verb::post, "/v1/credentials/{name}/login", bind(&api::handle_login));
  router_.add(verb::get, "/healthz", bind(&api::handle_healthz));
  router_.add(verb::get, "/readyz", bind(&api::handle_readyz));
  router_.add(verb::get, "/metrics", bind(&api::handle_metrics));
}

std::optional<http::response> api::guard(const http::request_view& h,
                                         const http::peer_info& peer) {
  // Only origin-form targets: an absolute URI or CONNECT would ask us to act as a general proxy.
  if (h.target().empty() || h.target().front() != '/' || h.method() == http::verb::connect)
    return http::error_response(status::bad_request, "bad_request",
                                "only origin-form request targets are served", h.version());
  if (peer.unix_socket) return std::nullopt;
  std::string_view path = h.target();
  path = path.substr(0, path.find('?'));
  // A browser page must never read a token: any request carrying Origin is refused.
  if (h.field("Origin"))
    return http::error_response(status::forbidden, "forbidden",
                                "requests from web pages (Origin header) are refused",
                                h.version());
  // SSRF guard: a forged request from a confused local service cannot add this header.
  // Probes and scrapers (health, readiness, metrics) carry no secret and are exempt.
  bool probe = path == "/healthz" || path == "/readyz" || path == "/metrics";
  if (!probe && h.field("X-Token-Broker") != "1")
    return http::error_response(status::precondition_failed, "missing_header",
                                "requests over TCP must carry the header X-Token-Broker: 1",
                                h.version());
  return std::nullopt;
}

awaitable<http::response> api::handle(http::request& req, const http::peer_info& peer) {
  if (auto refused = guard(http::request_view(req.base()), peer)) co_return std::move(*refused);
  co_return co_await router_.dispatch(req, peer);
}

http::quick_answer api::try_handle(const http::request_view& req, const http::peer_info& peer) {
  std::string_view target = req.target();
  if (req.method() != http::verb::get || !target.starts_with(quick_prefix)) return std::nullopt;
  auto q = target.find('?');
  std::string_view name =
      target.substr(quick_prefix.size(), q - std::min(q, quick_prefix.size()));
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  // Plain names only; the router decodes and judges the rest.
  if (name.empty() || name.find_first_of("/%") != std::string_view::npos) return std::nullopt;
  if (auto refused = guard(req, peer)) return std::move(*refused);
  auto who = authorize(name, peer, req.version());
  if (auto* res = std::get_if<http::response>(&who)) return std::move(*res);
  auto mv = min_valid_param(query, req.version());
  if (auto* res = std::get_if<http::response>(&mv)) return std::move(*res);
  auto& cred = *std::get<broker::entry_ptr>(who)->cred;
  auto now = std::chrono::system_clock::now();
  auto t = cred.peek_token(std::get<std::chrono::seconds>(mv), now);
  if (!t) return std::nullopt;
  // The answers of one second differ in nothing else (expires_in counts seconds): the body is
  // made once per token and second, and reused until either changes.
  auto now_s = std::chrono::floor<std::chrono::seconds>(now);
  auto& memo = cred.rendering_memo();
  if (!memo.made_from(*t, now_s)) {
    memo.text = secret{token_json(*t, now_s)};
    memo.token = t->access_token;
    memo.token_type = t->token_type;
    memo.scope = t->scope;
    memo.expires_at = t->expires_at;
    memo.at = now_s;
  }
  return http::quick_answer::ok_json(memo.text.reveal());
}

std::variant<std::chrono::seconds, http::response> api::min_valid_param(std::string_view query,
                                                                        unsigned version) {
  if (query.empty()) return std::chrono::seconds{0};
  auto q = http::form::parse(query);
  auto mv = q ? q->get("min_valid") : std::nullopt;
  if (!q || (q->fields().size() > 0 && !mv))
    return http::error_response(status::bad_request, "bad_request",
                                "the only query parameter is min_valid=SECONDS", version);
  std::int64_t v = -1;
  auto [p, ec] = std::from_chars(mv->data(), mv->data() + mv->size(), v);
  if (ec != std::errc{} || p != mv->data() + mv->size() || v < 0 || v > 86400 * 365)
    return http::error_response(status::bad_request, "bad_request",
                                "min_valid must be a whole number of seconds", version);
  return std::chrono::seconds{v};
}

bool api::allowed(const broker::entry& e, const http::peer_info& peer) const {
  if (!e.access.restricted()) return true;
  if (!peer.unix_socket || !peer.uid) return false;  // an allow list needs peer credentials
  if (*peer.uid == 0 || *peer.uid == options_.daemon_uid) return true;
  for (auto u : e.access.uids)
    if (u == *peer.uid) return true;
  if (peer.gid)
    for (auto g : e.access.gids)
      if (g == *peer.gid) return true;
  return false;
}

std::variant<broker::entry_ptr, http::response> api::authorize(std::string_view name,
                                                               const http::peer_info& peer,
                                                               unsigned version) {
  auto e = registry_.find(name);
  if (!e) {
    metrics_.token_request("unknown", "unknown_credential");
    return http::error_response(status::not_found, "unknown_credential",
                                "no credential named \"" + std::string(name.substr(0, 64)) + "\"",
                                version);
  }
  if (!allowed(*e, peer)) {
    metrics_.token_request(std::string(name), "forbidden");
    log::warn("refused credential {} to uid {} ({})", name,
              peer.uid ? std::to_string(*peer.uid) : std::string("unknown"), peer.address);
    return http::error_response(status::forbidden, "forbidden",
                                "this caller may not use credential \"" + std::string(name) + "\"",
                                version);
  }
  return e;
}

std::variant<broker::entry_ptr, http::response> api::authorize(http::request_context& ctx) {
  return authorize(ctx.param("name"), ctx.peer, ctx.req.version());
}

awaitable<http::response> api::handle_token(http::request_context& ctx) {
  auto who = authorize(ctx);
  if (auto* res = std::get_if<http::response>(&who)) co_return std::move(*res);
  // Held across the wait below: a reload may replace or remove the entry meanwhile.
  auto e = std::get<broker::entry_ptr>(who);
  auto mv = min_valid_param(ctx.query, ctx.req.version());
  if (auto* res = std::get_if<http::response>(&mv)) co_return std::move(*res);
  auto min_valid = std::get<std::chrono::seconds>(mv);
  auto t = co_await e->cred->get_token(min_valid, options_.token_wait);
  if (!t) co_return error_for(t.error(), ctx.req.version());
  co_return http::json_response(status::ok, token_json(*t, now_seconds()),
                                  ctx.req.version());
}

awaitable<http::response> api::handle_credentials(http::request_context& ctx) {
  json list = json::array();
  for (const auto& [name, e] : registry_.all())
    if (allowed(*e, ctx.peer)) list.push_back(status_object(e->cred->status()));
  json body{{"credentials", std::move(list)}};
  if (options_.etcd_up) body["cluster"] = {{"etcd_up", options_.etcd_up()}};
  co_return respond(status::ok, body, ctx.req.version());
}

awaitable<http::response> api::handle_refresh(http::request_context& ctx) {
  auto who = authorize(ctx);
  if (auto* res = std::get_if<http::response>(&who)) co_return std::move(*res);
  auto e = std::get<broker::entry_ptr>(who);
  auto r = co_await e->cred->force_refresh(options_.token_wait * 3);
  if (!r) co_return error_for(r.error(), ctx.req.version());
  co_return respond(status::ok, status_object(e->cred->status()), ctx.req.version());
}

awaitable<http::response> api::handle_login(http::request_context& ctx) {
  auto who = authorize(ctx);
  if (auto* res = std::get_if<http::response>(&who)) co_return std::move(*res);
  auto e = std::get<broker::entry_ptr>(who);
  // Browser logins (oauth2 authorization_code): start one, or wait for its outcome.
  auto browser = co_await handle_browser_login(*e, ctx.req, options_.token_wait * 2);
  if (browser) co_return std::move(*browser);
  auto body = json::parse(ctx.req.body(), nullptr, false);
  if (!body.is_object())
    co_return http::error_response(status::bad_request, "bad_request",
                                   "the body must be a JSON object", ctx.req.version());
  broker::login_input input;
  auto text = [&](const char* key) -> std::string {
    auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string{};
  };
  input.username = text("username");
  input.password = secret{text("password")};
  input.profile_token = secret{text("profile_token")};
  input.code = secret{text("code")};
  input.code_verifier = secret{text("code_verifier")};
  input.redirect_uri = text("redirect_uri");
  input.refresh_token = secret{text("refresh_token")};
  // Wipe the request body: it held a password or token.
  std::fill(ctx.req.body().begin(), ctx.req.body().end(), '\0');
  auto r = co_await e->cred->login(input);
  if (!r) {
    co_return http::error_response(status::bad_request, "login_failed", r.error().describe(),
                                   ctx.req.version());
  }
  co_return respond(status::ok, status_object(e->cred->status()), ctx.req.version());
}

awaitable<http::response> api::handle_healthz(http::request_context& ctx) {
  co_return respond(status::ok, json{{"status", "ok"}}, ctx.req.version());
}

awaitable<http::response> api::handle_readyz(http::request_context& ctx) {
  json not_ready = json::array();
  for (const auto& [name, e] : registry_.all())
    if (!e->cred->ready())
      not_ready.push_back(
          {{"name", name}, {"state", std::string(broker::to_string(e->cred->status().state))}});
  if (not_ready.empty()) co_return respond(status::ok, json{{"status", "ready"}}, ctx.req.version());
  co_return respond(status::service_unavailable,
                    json{{"error", "not_ready"},
                         {"message", "some credentials hold no usable token"},
                         {"credentials", not_ready}},
                    ctx.req.version());
}

awaitable<http::response> api::handle_metrics(http::request_context& ctx) {
  http::response res{status::ok, ctx.req.version()};
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.set(http::field::cache_control, "no-store");
  res.body() = metrics_.render();
  co_return res;
}

}  // namespace tokenbroker::app
