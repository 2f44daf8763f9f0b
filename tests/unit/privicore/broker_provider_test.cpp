// The broker's Privicore provider driven through a credential, against the in-process HTTP server.
#include "privicore/broker_provider.hpp"

#include <doctest/doctest.h>

#include "broker/credential.hpp"
#include "fakes.hpp"
#include "http/form.hpp"

using namespace tokenbroker;
using namespace tokenbroker::privicore;
using namespace tokenbroker::privicore::test;

namespace {

std::string path_of(const http::request& r) {
  std::string_view t = r.target();
  return std::string(t.substr(0, t.find('?')));
}

/// Remembers every save, in order.
struct recording_store final : store::state_store {
  std::vector<broker::token_bundle> saved;
  awaitable<result<std::optional<broker::token_bundle>>> load(const std::string&) override {
    co_return std::optional<broker::token_bundle>{};
  }
  awaitable<result<void>> save(const std::string&, const broker::token_bundle& b) override {
    saved.push_back(b);
    co_return result<void>{};
  }
  awaitable<result<void>> erase(const std::string&) override { co_return result<void>{}; }
};

/// A Privicore double for `tokenbrokerctl login` with a username and password: a profile
/// session, the §6 grant by polling, and the session's revoke, which notes how many bundles the
/// store held when it arrived.
struct login_server {
  recording_store* store;
  std::string final_status = R"("succeeded")";
  std::optional<std::size_t>* saves_at_revoke;

  http::response operator()(const http::request& r) {
    auto path = path_of(r);
    if (path == "/base/profile/authenticate")
      return json_answer(
          200, R"({"authorizationToken":"pt-login","expiresAt":"2030-01-01T00:00:00+00:00"})");
    if (path == "/base/profile/oauth-application-request-authorization-code")
      return json_answer(202, R"(["req-1"])");
    if (path == "/base/request-status/req-1") return json_answer(200, final_status);
    if (path == "/base/oauth-application/retrieve-authorization-code") {
      auto f = http::form::parse(r.body()).value();
      nlohmann::json j{{"clientId", "cid-1"},
                       {"nonce", f.get("nonce").value_or("")},
                       {"authorizationCode", "ac-1"},
                       {"expiresAt", "2030-01-01T00:00:00+00:00"}};
      return json_answer(200, j.dump());
    }
    if (path == "/base/oauth-application/obtain-access-token")
      return json_answer(200, R"({"clientId":"cid-1","token":"at-1","refreshToken":"rt-1",
          "type":"bearer","scope":"all","expiresAt":"2030-01-01T00:00:00+00:00"})");
    if (path == "/base/profile/revoke-authorization-token") {
      *saves_at_revoke = store->saved.size();
      return json_answer(200, R"({"revoked":true})");
    }
    return json_answer(404, "");
  }
};

struct login_harness {
  fixture fx;
  recording_store store;
  metrics::registry metrics;
  std::optional<std::size_t> saves_at_revoke;
  std::unique_ptr<broker::credential> cred;

  login_harness() {
    config::credential_config cfg;
    cfg.name = "pc";
    cfg.api_url = fx.http_server.url();
    cfg.client_id = "cid-1";
    cfg.client_secret = secret{"s3cret"};
    cfg.timeout = 2s;  // no stored login: the credential never grants on its own
    auto p = std::make_unique<broker_provider>(fx.ioc.get_executor(), cfg, fx.http);
    broker::credential_options o;
    o.name = "pc";
    o.provider_name = "privicore";
    cred = std::make_unique<broker::credential>(fx.ioc.get_executor(), o, std::move(p), store,
                                                metrics, 1);
  }

  result<void> login() {
    result<void> out = make_error(errc::unavailable, "not run");
    fx.run([&]() -> awaitable<void> {
      broker::login_input in;
      in.username = "alice";
      in.password = secret{"pw"};
      out = co_await cred->login(in);
    });
    return out;
  }

  const http::request* revoke_request() const {
    for (const auto& r : fx.http_server.requests)
      if (path_of(r) == "/base/profile/revoke-authorization-token") return &r;
    return nullptr;
  }
};

}  // namespace

TEST_CASE("a_login_revokes_its_profile_session_only_after_the_new_grant_is_saved") {
  login_harness h;
  h.fx.http_server.respond = login_server{&h.store, R"("succeeded")", &h.saves_at_revoke};
  REQUIRE(h.login().has_value());
  REQUIRE(h.store.saved.size() == 1);
  CHECK(h.store.saved[0].access_token.reveal() == "at-1");
  CHECK(h.store.saved[0].refresh_token.reveal() == "rt-1");
  auto* revoke = h.revoke_request();
  REQUIRE(revoke != nullptr);
  CHECK(std::string(revoke->at("X-DPT-AUTHORIZATION")) == "pt-login");
  // The session outlives nothing but the save: revoked after the grant was persisted.
  REQUIRE(h.saves_at_revoke.has_value());
  CHECK(*h.saves_at_revoke == 1);
  CHECK(path_of(h.fx.http_server.requests.back()) == "/base/profile/revoke-authorization-token");
}

TEST_CASE("a_failed_login_still_revokes_its_profile_session") {
  login_harness h;
  h.fx.http_server.respond = login_server{
      &h.store, R"({"command_status":3,"body":"profile.not_an_owner"})", &h.saves_at_revoke};
  auto r = h.login();
  REQUIRE_FALSE(r.has_value());
  CHECK(h.store.saved.empty());
  auto* revoke = h.revoke_request();
  REQUIRE(revoke != nullptr);
  CHECK(std::string(revoke->at("X-DPT-AUTHORIZATION")) == "pt-login");
}
