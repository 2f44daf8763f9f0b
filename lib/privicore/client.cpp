#include "privicore/client.hpp"

#include "core/log.hpp"
#include "privicore/parse.hpp"
#include "privicore/requests.hpp"

namespace tokenbroker::privicore {
namespace {

bool has_control(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return true;
  return false;
}

}  // namespace

/// One request on its way: what to call it in logs and errors, and which secrets it carries.
struct client::call {
  http::request req;
  std::string what;             // "POST /base/profile/authenticate" (no query: it holds a nonce)
  std::vector<secret> carried;  // scrubbed from error messages: the server might echo them

  call(http::request r, std::initializer_list<const secret*> sent) : req(std::move(r)) {
    std::string_view target = req.target();
    what = std::string(req.method_string()) + " " + std::string(target.substr(0, target.find('?')));
    for (const secret* s : sent)
      if (s && !s->empty()) carried.push_back(*s);
    if (auto it = req.find(http::field::authorization); it != req.end()) {
      std::string_view v = it->value();
      carried.emplace_back(std::string(v.substr(v.starts_with("Basic ") ? 6 : 0)));
    }
  }

  error annotate(error e) const {
    e.message = what + ": " + e.message;
    for (const auto& s : carried) redact(e.message, s.reveal());
    return e;
  }

  template <class T>
  result<T> finish(result<T> r) const {
    if (r) return r;
    return annotate(r.error());
  }
};

client::client(http::client& http, http::url api_url, std::chrono::milliseconds timeout,
               status_method method)
    : http_(http), api_(std::move(api_url)), timeout_(timeout), method_(method) {}

awaitable<result<http::response>> client::exchange(call& c) {
  for (const auto& f : c.req)
    if (has_control(f.value()))
      co_return c.annotate(make_error(
          errc::invalid_argument, "header " + std::string(f.name_string()) + " holds a line break"));
  auto start = steady_clock::now();
  auto res = co_await http_.send(api_, std::move(c.req), timeout_);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start);
  if (!res) {
    auto e = c.annotate(res.error());
    log::debug("privicore {} failed after {}ms: {}", c.what, ms.count(), e.describe());
    co_return e;
  }
  log::debug("privicore {} -> {} in {}ms", c.what, res->result_int(), ms.count());
  co_return res;
}

awaitable<result<std::string>> client::health() {
  call c{build_health(api_), {}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_health(*res));
}

awaitable<result<profile_token>> client::authenticate(std::string_view username,
                                                      const secret& password) {
  call c{build_authenticate(api_, username, password), {&password}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_profile_token(*res));
}

awaitable<result<sys_seconds>> client::token_expiry(const secret& profile) {
  call c{build_token_expiry(api_, profile), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_token_expiry(*res));
}

awaitable<result<reauthorize_outcome>> client::reauthorize(const secret& profile,
                                                           std::chrono::seconds ttl) {
  call c{build_reauthorize(api_, profile, ttl), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_reauthorize(*res));
}

awaitable<result<void>> client::revoke(const secret& profile) {
  call c{build_revoke(api_, profile), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_no_content(*res));
}

awaitable<result<std::string>> client::register_application(
    const secret& profile, std::string_view name, std::string_view redirect_uri,
    const std::vector<std::string>& scopes) {
  call c{build_register_application(api_, profile, name, redirect_uri, scopes), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_command_id(*res));
}

awaitable<result<app_config>> client::retrieve_configuration(const secret& profile,
                                                             std::string_view application_id) {
  call c{build_retrieve_configuration(api_, profile, application_id), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  auto config = parse_app_config(*res, application_id);
  if (!config && res->result_int() == 422 && res->body().find("already_retrieved") != std::string::npos)
    co_return c.annotate(make_http_error(
        422, "oauth.already_retrieved: the configuration of application " +
                 sanitize(application_id, 80) +
                 " was already retrieved; Privicore hands out the client secret only once "
                 "(PROTOCOL §5.8), so register a new application"));
  co_return c.finish(std::move(config));
}

awaitable<result<std::string>> client::request_authorization_code(
    const secret& profile, std::string_view client_id, std::string_view nonce,
    const std::vector<std::string>& scopes) {
  call c{build_request_authorization_code(api_, profile, client_id, nonce, scopes), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_command_id(*res));
}

awaitable<result<authorization_code>> client::retrieve_authorization_code(
    const client_credentials& creds, std::string_view request_id, std::string_view nonce) {
  call c{build_retrieve_authorization_code(api_, creds, request_id, nonce), {&creds.client_secret}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_authorization_code(*res));
}

awaitable<result<token_set>> client::obtain_access_token(const client_credentials& creds,
                                                         const secret& code) {
  call c{build_obtain_access_token(api_, creds, code), {&creds.client_secret, &code}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_token_set(*res, now_seconds()));
}

awaitable<result<refresh_outcome>> client::refresh_access_token(const secret& access_token,
                                                                const secret& refresh_token) {
  call c{build_refresh_access_token(api_, access_token, refresh_token),
         {&access_token, &refresh_token}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_refresh(*res, now_seconds()));
}

awaitable<result<std::vector<application_summary>>> client::list_applications(
    const secret& profile) {
  call c{build_list_applications(api_, profile), {&profile}};
  auto res = co_await exchange(c);
  if (!res) co_return res.error();
  co_return c.finish(parse_application_list(*res));
}

awaitable<result<nlohmann::json>> client::application_scope(
    const secret& access_token, std::optional<std::string_view> application_id) {
  // UNKNOWN endpoint (§5.14): PRB's POST first, then the GET that OFF's menu names.
  for (auto method : {http::verb::post, http::verb::get}) {
    call c{build_application_scope(api_, access_token, application_id, method), {&access_token}};
    auto res = co_await exchange(c);
    if (!res) co_return res.error();
    int status = res->result_int();
    if (method == http::verb::post && (status == 404 || status == 405)) continue;
    co_return c.finish(parse_json_body(*res));
  }
  co_return make_error(errc::not_found, "unreachable");  // the GET always returns above
}

status_method client::detected_status_method() const noexcept {
  if (method_ != status_method::automatic || !found_status_method_) return method_;
  return *found_status_method_ == http::verb::get ? status_method::get : status_method::post;
}

awaitable<result<command_outcome>> client::command_status(std::string_view id,
                                                          const secret* profile) {
  if (id.empty()) co_return make_error(errc::invalid_argument, "command status: empty command id");
  auto unknown = [&] {
    return make_error(errc::not_found,
                      "command " + sanitize(id, 80) + " is unknown to Privicore (404 from "
                      "/request-status)");
  };
  auto ask = [&](http::verb method) {
    return call{build_command_status(api_, id, profile, method), {profile}};
  };

  std::optional<http::verb> known = found_status_method_;
  if (method_ == status_method::get) known = http::verb::get;
  if (method_ == status_method::post) known = http::verb::post;
  if (known) {
    auto c = ask(*known);
    auto res = co_await exchange(c);
    if (!res) co_return res.error();
    if (res->result_int() == 404) co_return unknown();
    if (res->result_int() != 405 || method_ != status_method::automatic)
      co_return c.finish(parse_command_status(*res, id));
    found_status_method_.reset();  // the server stopped taking this method: detect again
  }

  // Automatic detection (§7.1 #10): OFF's GET first, then PRB's POST once.
  auto get = ask(http::verb::get);
  auto first = co_await exchange(get);
  if (!first) co_return first.error();
  int get_status = first->result_int();
  if (get_status != 404 && get_status != 405) {
    if (is_success(*first)) found_status_method_ = http::verb::get;
    co_return get.finish(parse_command_status(*first, id));
  }
  auto post = ask(http::verb::post);
  auto second = co_await exchange(post);
  if (!second) co_return second.error();
  int post_status = second->result_int();
  if (is_success(*second) || get_status == 405) found_status_method_ = http::verb::post;
  else if (post_status == 405) found_status_method_ = http::verb::get;
  if (found_status_method_)
    log::debug("privicore: /request-status answers to {}",
               *found_status_method_ == http::verb::get ? "GET" : "POST");
  if (post_status == 404 || (post_status == 405 && get_status == 404)) co_return unknown();
  co_return post.finish(parse_command_status(*second, id));
}

}  // namespace tokenbroker::privicore
