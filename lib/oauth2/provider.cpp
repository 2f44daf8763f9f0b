#include "oauth2/provider.hpp"

#include "core/log.hpp"
#include "core/random.hpp"
#include "oauth2/parse.hpp"

namespace tokenbroker::oauth2 {
namespace {

std::string_view grant_name(config::oauth2_grant g) {
  switch (g) {
    case config::oauth2_grant::refresh_token: return "refresh_token";
    case config::oauth2_grant::client_credentials: return "client_credentials";
    case config::oauth2_grant::authorization_code: return "authorization_code";
  }
  return "?";
}

// Wipes a buffer that held tokens before it is freed.
void wipe(std::string& s) { std::fill(s.begin(), s.end(), '\0'); }

}  // namespace

provider::provider(net::any_io_executor ex, const config::credential_config& cfg,
                   http::client& http)
    : ex_(std::move(ex)),
      name_(cfg.name),
      http_(http),
      client_{cfg.client_id, cfg.client_secret,
              cfg.auth == config::client_auth::client_secret_basic
                  ? client_auth::client_secret_basic
                  : client_auth::client_secret_post},
      grant_(cfg.grant),
      scope_(cfg.scope),
      seed_refresh_token_(cfg.refresh_token),
      token_url_(cfg.token_url),
      authorization_url_(cfg.authorization_url),
      issuer_(cfg.issuer),
      redirect_{cfg.redirect_host, cfg.redirect_port, cfg.redirect_path},
      timeout_(cfg.timeout),
      login_timeout_(cfg.login_timeout) {}

provider::~provider() { stop(); }

void provider::stop() {
  if (login_) login_->cancel("the daemon is stopping");
}

std::optional<broker::token_bundle> provider::seed() const {
  if (seed_refresh_token_.empty() || can_grant()) return std::nullopt;
  broker::token_bundle b;
  b.refresh_token = seed_refresh_token_;
  b.scope = scope_;
  b.grant_id = "seed";
  return b;
}

awaitable<result<endpoints>> provider::do_endpoints() {
  if (token_url_) co_return endpoints{"", *token_url_, authorization_url_};
  if (discovered_) co_return *discovered_;
  auto u = discovery_url(*issuer_);
  http::request req{http::verb::get, u.target(), 11};
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "tokenbroker/" TOKENBROKER_VERSION);
  auto res = co_await http_.send(u, std::move(req), timeout_);
  if (!res) {
    auto e = res.error();
    e.message = "OpenID discovery at " + u.host_header() + ": " + e.message;
    co_return e;
  }
  auto expected = issuer_string(*issuer_);
  auto parsed = parse_discovery(res->result_int(), res->body(), expected);
  if (!parsed) {
    auto e = parsed.error();
    if (auto ra = (*res)[http::field::retry_after]; !ra.empty()) {
      if (auto d = parse_retry_after(ra, now_seconds())) e.retry_after = std::min(*d, max_retry_after);
    }
    log::warn("credential {}: OpenID discovery for {} failed: {}", name_, expected, e.describe());
    co_return e;
  }
  if (authorization_url_) parsed->authorization = authorization_url_;
  log::info("credential {}: issuer {} has its token endpoint at {}{}", name_, parsed->issuer,
            parsed->token.origin(), parsed->token.path);
  discovered_ = std::move(*parsed);
  co_return *discovered_;
}

awaitable<result<broker::token_bundle>> provider::do_token_request(
    const token_request& r, const std::vector<const secret*>& sent) {
  auto eps = co_await do_endpoints();
  if (!eps) co_return eps.error();
  const auto& url = eps->token;
  http::request req{http::verb::post, url.target(), 11};
  req.set(http::field::content_type, "application/x-www-form-urlencoded");
  req.set(http::field::accept, "application/json");
  req.set(http::field::user_agent, "tokenbroker/" TOKENBROKER_VERSION);
  if (!r.authorization.empty()) req.set(http::field::authorization, r.authorization.reveal());
  req.body() = r.body.reveal();
  auto res = co_await http_.send(url, std::move(req), timeout_);
  if (!res) {
    auto e = res.error();
    e.message = "token endpoint " + url.host_header() + ": " + e.message;
    co_return e;
  }
  auto parsed = parse_token_response(res->result_int(), (*res)[http::field::content_type],
                                     res->body(), now_seconds(),
                                     (*res)[http::field::retry_after]);
  wipe(res->body());
  if (!parsed) {
    auto e = parsed.error();
    e.message = redact(std::move(e.message), sent);
    co_return e;
  }
  co_return std::move(*parsed);
}

awaitable<result<broker::token_bundle>> provider::do_refresh(const secret& refresh_token,
                                                             const std::string& grant_id,
                                                             const std::string& scope_held) {
  // RFC 6749 §6: a refresh may not ask for more than was granted, and providers grant less than
  // asked (offline_access dropped, scopes rewritten): ask for what the last answer said. Azure
  // AD's v2 endpoint wants a scope on every refresh, so never send none when one is known.
  const auto& scope = scope_held.empty() ? scope_ : scope_held;
  auto req = refresh_request(client_, refresh_token, scope);
  // Named: a braced list as a coroutine argument does not compile with g++ 12.
  std::vector<const secret*> sent{&refresh_token, &client_.client_secret};
  auto r = co_await do_token_request(req, sent);
  if (!r) co_return r.error();
  // RFC 6749 §6: a new refresh token replaces the old one (which the server may already have
  // invalidated: the engine persists the bundle before anyone uses it); none keeps the old one.
  if (!r->has_refresh_token()) r->refresh_token = refresh_token;
  else if (!(r->refresh_token == refresh_token))
    log::debug("credential {}: refresh token rotated: {} -> {}", name_, refresh_token,
               r->refresh_token);
  if (r->scope.empty()) r->scope = scope_held.empty() ? scope_ : scope_held;
  r->grant_id = grant_id.empty() ? random_hex(8) : grant_id;
  co_return r;
}

awaitable<result<std::optional<broker::token_bundle>>> provider::refresh(
    const broker::token_bundle& current) {
  if (can_grant()) {
    auto g = co_await grant();
    if (!g) co_return g.error();
    co_return std::optional<broker::token_bundle>{std::move(*g)};
  }
  auto r = co_await do_refresh(current.refresh_token, current.grant_id, current.scope);
  if (!r) co_return r.error();
  if (!r->refresh_expires_at && r->refresh_token == current.refresh_token)
    r->refresh_expires_at = current.refresh_expires_at;
  co_return std::optional<broker::token_bundle>{std::move(*r)};
}

awaitable<result<broker::token_bundle>> provider::grant() {
  if (!can_grant())
    co_return make_error(errc::unavailable, "grant " + std::string(grant_name(grant_)) +
                                                " needs a person: tokenbrokerctl login " + name_);
  auto req = client_credentials_request(client_, scope_);
  std::vector<const secret*> sent{&client_.client_secret};
  auto r = co_await do_token_request(req, sent);
  if (!r) co_return r.error();
  r->refresh_token = secret{};  // §4.4.3: not used; renewing means granting again
  r->refresh_expires_at.reset();
  if (r->scope.empty()) r->scope = scope_;
  r->grant_id = random_hex(8);
  co_return r;
}

awaitable<result<broker::token_bundle>> provider::login(const broker::login_input& input) {
  if (!input.code.empty()) {
    if (!browser_grant())
      co_return make_error(errc::invalid_argument,
                           "an authorization code is for grant = \"authorization_code\"");
    if (input.code_verifier.empty() || input.redirect_uri.empty())
      co_return make_error(errc::invalid_argument,
                           "an authorization code needs its code_verifier and redirect_uri");
    auto req = authorization_code_request(client_, input.code, input.redirect_uri,
                                          input.code_verifier);
    std::vector<const secret*> sent{&input.code, &input.code_verifier, &client_.client_secret};
    auto r = co_await do_token_request(req, sent);
    if (!r) co_return r.error();
    if (!r->has_refresh_token())
      log::warn("credential {}: the provider issued no refresh token; another login will be "
                "needed when the access token expires (does the scope need offline_access?)",
                name_);
    if (r->scope.empty()) r->scope = scope_;
    r->grant_id = random_hex(8);
    co_return r;
  }
  if (!input.refresh_token.empty() && !can_grant()) {
    // Named: g++ 12 mishandles non-trivial temporaries inside co_await expressions.
    auto grant_id = random_hex(8);
    std::string no_scope;
    auto r = co_await do_refresh(input.refresh_token, grant_id, no_scope);
    co_return r;
  }
  if (can_grant())
    co_return make_error(errc::invalid_argument,
                         "grant client_credentials needs no login; use tokenbrokerctl refresh");
  if (browser_grant())
    co_return make_error(errc::invalid_argument,
                         "this credential logs in through a browser: send an empty body to start");
  co_return make_error(errc::invalid_argument,
                       "give a refresh token: tokenbrokerctl login " + name_ +
                           " --refresh-token-file FILE");
}

awaitable<result<std::shared_ptr<browser_login>>> provider::begin_login() {
  if (!browser_grant())
    co_return make_error(errc::invalid_argument, "only grant = \"authorization_code\" logs in "
                                                 "through a browser");
  auto eps = co_await do_endpoints();
  if (!eps) co_return eps.error();
  if (!eps->authorization)
    co_return make_error(errc::invalid_argument,
                         "no authorization endpoint: configure authorization_url, or an issuer "
                         "whose discovery document has one");
  browser_login_options o;
  o.name = name_;
  o.authorization_endpoint = *eps->authorization;
  o.client_id = client_.client_id;
  o.scope = scope_;
  o.redirect = redirect_;
  o.issuer = eps->issuer;
  o.timeout = login_timeout_;
  // Before binding: a fixed redirect port is still held by the login being replaced.
  if (login_) login_->cancel("replaced by a newer login");
  auto l = browser_login::open(ex_, std::move(o));
  if (!l) co_return l.error();
  login_ = *l;
  co_return login_;
}

}  // namespace tokenbroker::oauth2
