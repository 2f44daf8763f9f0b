// oauth2 credentials against a real OpenID provider (oidc-provider, tests/peers/oidc): the exact
// form bodies sent, refresh-token rotation, revocation and the error classes of RFC 6749 §5.2.
#include <doctest/doctest.h>

#include <csignal>
#include <functional>
#include <set>
#include <thread>

#include "broker_fixture.hpp"
#include "oauth2_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Polls the peer's token-request log until `pred` holds or `timeout` passes; returns the log.
json wait_for_requests(const oidc_peer& peer, const std::function<bool(const json&)>& pred,
                       std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto log = peer.token_requests();
    if (pred(log) || std::chrono::steady_clock::now() >= deadline) return log;
    std::this_thread::sleep_for(50ms);
  }
}

std::set<std::string> issued_access_tokens(const json& log) {
  std::set<std::string> out;
  for (const auto& r : log)
    if (r.contains("access_token") && r["access_token"].is_string())
      out.insert(r["access_token"].get<std::string>());
  return out;
}

std::string credential(const std::string& name, const std::string& keys) {
  return "[credential." + name + "]\nprovider = \"oauth2\"\nrefresh_margin = \"1s\"\n" +
         "timeout = \"10s\"\nallow_uids = []\n" + keys + "\n";
}

std::string client_credentials(const oidc_peer& peer, const std::string& extra = {}) {
  return credential("api", "grant = \"client_credentials\"\ntoken_url = \"" + peer.token_url() +
                               "\"\nclient_id = \"cc-post\"\nclient_secret_file = \"{dir}/cs\"\n"
                               "scope = \"api:read\"\n" + extra);
}

std::string refresh_token_grant(const oidc_peer& peer) {
  return credential("app", "grant = \"refresh_token\"\ntoken_url = \"" + peer.token_url() +
                               "\"\nclient_id = \"app\"\nclient_secret_file = \"{dir}/cs\"\n"
                               "refresh_token_file = \"{dir}/rt\"\n"
                               "scope = \"openid offline_access\"\n");
}

// Every refresh presents the refresh token the previous answer issued (the seed first), and no
// refresh token is ever presented twice: a replaced one would make the provider revoke the grant.
void check_rotation_chain(const json& log, const std::string& seed) {
  std::set<std::string> presented;
  std::string expected = seed;
  for (const auto& r : log) {
    if (r["grant_type"] != "refresh_token") continue;
    CAPTURE(r.dump());
    CHECK(r["status"] == 200);
    CHECK_FALSE(r.contains("error_detail"));
    REQUIRE(r["sent_refresh_token"].is_string());
    auto sent = r["sent_refresh_token"].get<std::string>();
    CHECK(sent == expected);
    CHECK(presented.insert(sent).second);
    REQUIRE(r["issued_refresh_token"].is_string());
    expected = r["issued_refresh_token"].get<std::string>();
    CHECK(expected != sent);
  }
}

}  // namespace

TEST_CASE("client_credentials_with_client_secret_post_sends_the_exact_form_and_renews_in_time") {
  oidc_peer peer{5s};
  oauth2_broker broker{client_credentials(peer), {{"cs", cc_post_secret}}};
  auto first = broker.call("GET", "/v1/token/api");
  REQUIRE(first.status == 200);
  auto body = first.json();
  CHECK(body["token_type"] == "Bearer");
  CHECK(body["scope"] == "api:read");

  // Two renewals: each a new client_credentials grant, before the previous token expired.
  auto log = wait_for_requests(peer, [](const json& l) { return l.size() >= 3; }, 60s);
  REQUIRE(log.size() >= 3);
  for (const auto& r : log) {
    CAPTURE(r.dump());
    CHECK(r["body"] == "grant_type=client_credentials&scope=api%3Aread&client_id=cc-post"
                       "&client_secret=cc-post-secret");
    CHECK(r["authorization"].is_null());
    CHECK(r["content_type"] == "application/x-www-form-urlencoded");
    CHECK(r["status"] == 200);
  }
  for (std::size_t i = 1; i < log.size(); ++i)
    CHECK(log[i]["at"].get<double>() - log[i - 1]["at"].get<double>() < 5000);
  auto issued = issued_access_tokens(log);
  CHECK(issued.count(body["access_token"].get<std::string>()) == 1);
  CHECK(issued.count(broker.token("api")) == 1);
  CHECK(broker.status("api")["last_error"].is_null());
}

TEST_CASE("client_secret_basic_through_openid_discovery_form_encodes_the_secret") {
  oidc_peer peer;
  oauth2_broker broker{
      credential("api", "grant = \"client_credentials\"\nissuer = \"" + peer.url() +
                            "\"\nclient_id = \"cc-basic\"\nclient_auth = \"client_secret_basic\"\n"
                            "client_secret_file = \"{dir}/cs\"\nscope = \"api:read\"\n"),
      {{"cs", cc_basic_secret}}};
  auto token = broker.token("api");
  auto log = peer.token_requests();
  REQUIRE(log.size() == 1);
  CHECK(log[0]["body"] == "grant_type=client_credentials&scope=api%3Aread");
  // base64("cc-basic:b4sic%3As3cret%2B%2F+%3D%25"): RFC 6749 §2.3.1 form-encodes first.
  CHECK(log[0]["authorization"] == "Basic Y2MtYmFzaWM6YjRzaWMlM0FzM2NyZXQlMkIlMkYrJTNEJTI1");
  CHECK(log[0]["status"] == 200);
  CHECK(log[0]["access_token"] == token);
}

TEST_CASE("invalid_client_puts_the_credential_in_error_without_a_retry_loop") {
  oidc_peer peer;
  oauth2_broker broker{client_credentials(peer), {{"cs", "not-the-secret-4711"}}};
  REQUIRE(broker.wait_for_state("api", "error", 30s));
  auto log = peer.token_requests();
  REQUIRE(log.size() == 1);
  CHECK(log[0]["error"] == "invalid_client");
  auto status = broker.status("api");
  auto last_error = status["last_error"].get<std::string>();
  CHECK(last_error.find("invalid_client: client authentication failed") != std::string::npos);
  CHECK(last_error.find("not-the-secret-4711") == std::string::npos);
  CHECK(broker.call("GET", "/v1/token/api").status == 503);

  // Only a forced refresh tries again (once), and the state stays error.
  auto forced = broker.call("POST", "/v1/credentials/api/refresh");
  CHECK(forced.status == 503);
  CHECK(peer.token_requests().size() == 2);
  CHECK(broker.status("api")["state"] == "error");
}

TEST_CASE("overload_answers_are_retried_no_sooner_than_retry_after") {
  oidc_peer peer;
  peer.fault(429, 1, "2");
  peer.fault(503, 1, "1");
  oauth2_broker broker{client_credentials(peer), {{"cs", cc_post_secret}}};
  REQUIRE(broker.wait_for_state("api", "fresh", 60s));
  auto log = peer.token_requests();
  REQUIRE(log.size() >= 3);
  CHECK(log[0]["status"] == 429);
  CHECK(log[1]["status"] == 503);
  CHECK(log[2]["status"] == 200);
  CHECK(log[1]["at"].get<double>() - log[0]["at"].get<double>() >= 1900);
  CHECK(log[2]["at"].get<double>() - log[1]["at"].get<double>() >= 900);
}

TEST_CASE("a_seeded_refresh_token_rotates_on_every_refresh_and_no_replaced_one_is_reused") {
  oidc_peer peer{2s};
  auto seed = peer.mint_refresh_token("app");
  oauth2_broker broker{refresh_token_grant(peer), {{"cs", app_secret}, {"rt", seed}}};
  // Answered refreshes only: the peer logs a request when it arrives and its answer after.
  auto refreshes = [](const json& l) {
    std::size_t n = 0;
    for (const auto& r : l)
      n += r.value("grant_type", std::string{}) == "refresh_token" && r.contains("status");
    return n;
  };
  auto log = wait_for_requests(peer, [&](const json& l) { return refreshes(l) >= 8; }, 90s);
  REQUIRE(refreshes(log) >= 8);
  // The next refresh may already be in flight, logged without its answer yet.
  if (!log.empty() && !log.back().contains("status")) log.erase(log.size() - 1);
  CHECK(log[0]["body"] == "grant_type=refresh_token&refresh_token=" + seed +
                              "&scope=openid%20offline_access&client_id=app"
                              "&client_secret=app-secret");
  check_rotation_chain(log, seed);
  CHECK(issued_access_tokens(peer.token_requests()).count(broker.token("app")) == 1);
  CHECK(broker.status("app")["last_error"].is_null());
}

TEST_CASE("the_rotated_refresh_token_is_persisted_before_use_and_survives_a_crash") {
  oidc_peer peer{60s};  // long-lived tokens: no refresh in flight when the broker is killed
  auto seed = peer.mint_refresh_token("app");
  oauth2_broker broker{refresh_token_grant(peer), {{"cs", app_secret}, {"rt", seed}}};
  auto before = broker.token("app");
  REQUIRE(peer.token_requests().size() == 1);

  broker.restart(SIGKILL);
  CHECK(broker.token("app") == before);  // restored, not fetched again
  REQUIRE(broker.call("POST", "/v1/credentials/app/refresh").status == 200);
  broker.restart(SIGTERM);
  REQUIRE(broker.call("POST", "/v1/credentials/app/refresh").status == 200);
  auto log = peer.token_requests();
  REQUIRE(log.size() == 3);
  check_rotation_chain(log, seed);
}

TEST_CASE("a_revoked_grant_needs_a_new_grant_and_a_refresh_token_from_the_operator_revives_it") {
  oidc_peer peer{2s};
  auto seed = peer.mint_refresh_token("app");
  oauth2_broker broker{refresh_token_grant(peer), {{"cs", app_secret}, {"rt", seed}}};
  wait_for_requests(peer, [](const json& l) { return l.size() >= 2; }, 30s);
  CHECK(peer.revoke("app") >= 1);
  REQUIRE(broker.wait_for_state("app", "needs_grant", 30s));
  auto log = peer.token_requests();
  REQUIRE(!log.empty());
  CHECK(log.back()["error"] == "invalid_grant");
  auto status = broker.status("app");
  CHECK(status["last_error"].get<std::string>().find("invalid_grant") != std::string::npos);

  // Nothing is retried: a forced refresh is refused without a request to the provider.
  auto forced = broker.call("POST", "/v1/credentials/app/refresh");
  CHECK(forced.status == 503);
  CHECK(forced.json()["message"].get<std::string>().find("tokenbrokerctl login app") !=
        std::string::npos);
  CHECK(peer.token_requests().size() == log.size());

  // tokenbrokerctl login app --refresh-token-file: a new grant from the operator.
  auto fresh_seed = peer.mint_refresh_token("app");
  auto file = write_secret(broker.dir(), "new-rt", fresh_seed);
  auto ctl = broker.ctl({"login", "app", "--refresh-token-file", file});
  auto exit = ctl->wait_exit(60s);
  REQUIRE(exit.has_value());
  CHECK(exit->ok());
  // Serving again. The provider's tokens live 2 s, so the next refresh may already be under way.
  auto state = broker.status("app")["state"].get<std::string>();
  CHECK_MESSAGE((state == "fresh" || state == "refreshing"), state);
  CHECK_FALSE(broker.token("app").empty());
  auto after = peer.token_requests();
  REQUIRE(after.size() > log.size());
  CHECK(after[log.size()]["sent_refresh_token"] == fresh_seed);
  CHECK(after[log.size()]["status"] == 200);
}

TEST_CASE("the_proxy_presents_an_oauth2_token_as_a_bearer_to_a_resource_that_checks_it") {
  oidc_peer peer{30s};
  auto seed = peer.mint_refresh_token("app");
  // api_url is the provider itself: its userinfo endpoint (/me) accepts only a valid token.
  auto cred = refresh_token_grant(peer) + "api_url = \"" + peer.url() + "\"\n";
  oauth2_broker broker{cred, {{"cs", app_secret}, {"rt", seed}}};
  broker.token("app");
  // The caller's own Authorization is dropped; the broker's bearer token is what the resource sees.
  auto r = unix_call(broker.socket_path(), "GET", "/v1/proxy/app/me",
                     {{"Authorization", "Bearer not-a-token"}});
  REQUIRE_MESSAGE(r.status == 200, r.body, r.error);
  CHECK(r.json()["sub"] == person);
  // Without the broker's token the same resource refuses.
  auto direct = http_call(peer.url(), "", "GET", "/me", {{"Authorization", "Bearer not-a-token"}});
  CHECK(direct.status == 401);
}
