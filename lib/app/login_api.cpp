#include "app/login_api.hpp"

#include <nlohmann/json.hpp>

#include "app/api.hpp"
#include "core/spawn.hpp"
#include "http/router.hpp"
#include "oauth2/provider.hpp"

namespace tokenbroker::app {
namespace {

using json = nlohmann::json;
using http::status;

json pending_body(const oauth2::browser_login& l) {
  return json{{"state", "pending"},
              {"authorization_url", l.authorization_url()},
              {"redirect_uri", l.redirect_uri()},
              {"expires_at", format_timestamp(l.expires_at())}};
}

http::response failed(const error& e, unsigned version) {
  return http::error_response(status::bad_request, "login_failed", e.describe(), version);
}

// Waits for the browser, exchanges the code through the credential (which persists the new
// grant before serving it), and records the outcome for the browser's page and for waiters.
// Holds the credential: a reload may remove it while the browser is still out.
awaitable<void> run_browser_login(std::shared_ptr<broker::credential> cred,
                                  std::shared_ptr<oauth2::browser_login> login) {
  auto input = co_await login->wait_for_callback();
  if (!input) co_return;  // the flow already holds its outcome (timeout, refusal, cancel)
  auto r = co_await cred->login(*input);
  login->finish(r ? result<void>{} : result<void>(r.error()));
}

}  // namespace

awaitable<std::optional<http::response>> handle_browser_login(const broker::entry& e,
                                                              const http::request& req,
                                                              std::chrono::milliseconds max_wait) {
  // Held across the waits below: a reload may swap the credential's provider meanwhile.
  auto held = e.cred->shared_provider();
  auto* p = dynamic_cast<oauth2::provider*>(held.get());
  if (!p || !p->browser_grant()) co_return std::nullopt;
  auto body = req.body().empty() ? json::object() : json::parse(req.body(), nullptr, false);
  if (!body.is_object()) co_return std::nullopt;  // the classic path answers bad_request
  auto version = req.version();

  if (body.empty()) {
    auto started = co_await p->begin_login();
    if (!started) co_return failed(started.error(), version);
    auto login = *started;
    auto ex = co_await net::this_coro::executor;
    spawn_logged(ex, "browser login " + e.cred->name(), run_browser_login(e.cred, login));
    co_return http::json_response(status::accepted, pending_body(*login).dump(), version);
  }

  auto wait = body.find("wait");
  if (body.size() != 1 || wait == body.end()) co_return std::nullopt;
  if (!wait->is_boolean() || !wait->get<bool>())
    co_return http::error_response(status::bad_request, "bad_request",
                                   "\"wait\" must be true", version);
  auto login = p->current_login();
  if (!login)
    co_return http::error_response(status::bad_request, "bad_request",
                                   "no browser login was started for \"" + e.cred->name() +
                                       "\"; send an empty body first",
                                   version);
  auto until = steady_clock::now() + max_wait;
  co_await login->wait_outcome(until);
  const auto& outcome = login->outcome();
  if (!outcome) co_return http::json_response(status::accepted, pending_body(*login).dump(), version);
  if (!*outcome) co_return failed(outcome->error(), version);
  co_return http::json_response(status::ok, status_json(e.cred->status()), version);
}

}  // namespace tokenbroker::app
