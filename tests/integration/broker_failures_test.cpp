// Outages, dead grants and logins: what the broker does when the provider misbehaves.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

TEST_CASE("through_an_outage_valid_tokens_are_served_then_503_with_retry_after_then_recovery") {
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "4s"}));
  broker_fixture b(sim);
  auto token = b.token();
  // Every refresh and grant answers 503 from now on.
  sim.fault({{"path", "/oauth-application/refresh-access-token"}, {"kind", "status"}, {"status", 503}});
  sim.fault({{"path", "/profile/authenticate"}, {"kind", "status"}, {"status", 503}});

  // While the token is valid it keeps being served, and the simulator accepts it.
  int served_valid = 0;
  http_result r;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    r = b.call("GET", "/v1/token/privicore");
    if (r.status != 200) break;
    auto t = r.json()["access_token"].get<std::string>();
    CHECK(sim.check(t)["valid"] == true);
    ++served_valid;
  }
  CHECK(served_valid > 0);
  // Then: no token, a 503 with Retry-After, never an expired token.
  REQUIRE(r.status == 503);
  CHECK(r.json()["error"] == "token_unavailable");
  CHECK(std::stoi(r.header("retry-after")) >= 1);
  CHECK(b.wait_for_state("expired", 5s));
  CHECK(b.call("GET", "/readyz").status == 503);
  CHECK(sim.stats()["refreshes"] == 0);

  // The provider comes back: the broker recovers without a restart.
  sim.clear_faults();
  auto force = b.call("POST", "/v1/credentials/privicore/refresh");
  CHECK(force.status == 200);
  auto fresh = b.token();
  CHECK(sim.check(fresh)["valid"] == true);
  CHECK(b.call("GET", "/readyz").status == 200);
}

TEST_CASE("an_outage_recovers_by_itself_with_backoff") {
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "3s"}));
  broker_fixture b(sim);
  b.token();
  sim.fault({{"path", "/oauth-application/refresh-access-token"}, {"kind", "status"},
             {"status", 503}, {"count", 2}});
  // Two failures, then the refresh succeeds on a later backoff attempt: the broker needs nobody.
  CHECK(b.wait_for_state("stale", 5s));
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (sim.stats()["refreshes"] == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(sim.stats()["refreshes"].get<int>() >= 1);
  CHECK(sim.check(b.token())["valid"] == true);
}

TEST_CASE("retry_after_from_the_provider_is_honoured") {
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "4s"}));
  broker_fixture b(sim);
  b.token();
  sim.fault({{"path", "/oauth-application/refresh-access-token"}, {"kind", "retry_after"},
             {"status", 429}, {"retry_after", 3}, {"count", 1}});
  auto r = b.call("POST", "/v1/credentials/privicore/refresh");
  CHECK(r.status == 503);
  auto state = b.call("GET", "/v1/credentials").json()["credentials"][0];
  CHECK(state["last_error"].get<std::string>().find("429") != std::string::npos);
  // The next attempt waits at least the 3 s the provider asked for.
  auto requests_before = sim.stats()["requests"]["/oauth-application/refresh-access-token"].get<int>();
  std::this_thread::sleep_for(1500ms);
  CHECK(sim.stats()["requests"]["/oauth-application/refresh-access-token"] == requests_before);
  CHECK(b.token().size() > 0);  // the token stays valid meanwhile
}

TEST_CASE("a_revoked_refresh_token_is_regranted_with_a_profile_login") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto first = b.token();
  CHECK(sim.revoke_grants(test_client_id) >= 1);
  auto r = b.call("POST", "/v1/credentials/privicore/refresh");
  CHECK(r.status == 503);  // this refresh was refused...
  // ...and the broker re-grants with the profile login, by itself.
  std::string next;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto t = b.call("GET", "/v1/token/privicore");
    if (t.status == 200 && t.json()["access_token"] != first) {
      next = t.json()["access_token"];
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE_FALSE(next.empty());
  CHECK(sim.check(next)["valid"] == true);
  CHECK(sim.stats()["grants"] == 2);
  CHECK(b.state() == "fresh");
}

TEST_CASE("without_a_profile_login_a_dead_grant_means_needs_grant_until_tokenbrokerctl_login") {
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;
  o.profile_login = false;
  broker_fixture b(sim, o);
  // Nothing to grant with yet.
  CHECK(b.wait_for_state("needs_grant", 5s));
  auto r = b.call("GET", "/v1/token/privicore");
  CHECK(r.status == 503);
  CHECK(r.json()["message"].get<std::string>().find("tokenbrokerctl login privicore") !=
        std::string::npos);
  CHECK(b.call("GET", "/readyz").status == 503);
  auto metrics = b.call("GET", "/metrics").body;
  CHECK(metrics.find("tokenbroker_credential_state{credential=\"privicore\",state=\"needs_grant\"} 1") !=
        std::string::npos);

  // An operator logs in once; the password goes over stdin and is never stored.
  process ctl(process_options{{bin_path("tokenbrokerctl"), "--socket", b.socket_path(), "login",
                               "privicore", "--username", test_username},
                              {},
                              std::string(test_password) + "\n",
                              b.dir().file("ctl.log")});
  auto st = ctl.wait_exit(30s);
  REQUIRE(st.has_value());
  CHECK_MESSAGE(st->ok(), ctl.stderr_text());
  CHECK(b.state() == "fresh");
  auto token = b.token();
  CHECK(sim.check(token)["valid"] == true);
  // The login session was only for the grant: the broker now lives on its refresh token.
  REQUIRE(b.call("POST", "/v1/credentials/privicore/refresh").status == 200);
  CHECK(sim.stats()["refreshes"] == 1);

  // The grant is revoked: no profile login to re-grant with, so needs_grant again. The broker
  // cannot tell a revoked access token from a valid one, so it serves the one it holds until
  // its expiry, and then answers 503 (asserted with short tokens in the test above).
  sim.revoke_grants(test_client_id);
  CHECK(b.call("POST", "/v1/credentials/privicore/refresh").status == 503);
  CHECK(b.wait_for_state("needs_grant", 5s));
  auto metrics_after = b.call("GET", "/metrics").body;
  CHECK(metrics_after.find("result=\"refresh_token_rejected\"} 1") != std::string::npos);
  // No secret reached the logs.
  auto log = b.proc().stderr_text();
  CHECK(log.find(test_password) == std::string::npos);
  CHECK(log.find(token) == std::string::npos);
  CHECK(log.find(test_client_secret) == std::string::npos);
}

TEST_CASE("a_second_daemon_on_the_same_socket_is_refused") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  process second(process_options{{bin_path("tokenbrokerd"), "--config", b.config_path()}, {}, {},
                                 b.dir().file("second.log")});
  auto st = second.wait_exit(10s);
  REQUIRE(st.has_value());
  CHECK(st->code == 1);
  CHECK(second.stderr_text().find("in use by another process") != std::string::npos);
  CHECK(b.call("GET", "/healthz").status == 200);  // the first one is untouched
}

TEST_CASE("the_tcp_listener_requires_the_guard_header_and_refuses_browsers") {
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;  // port 0: the kernel picks one, read back from the daemon's log
  o.extra_server = "listen = \"127.0.0.1:0\"\n";
  broker_fixture b(sim, o);
  // Find the bound port in the log line "listening on 127.0.0.1:PORT".
  auto log = b.proc().stderr_text();
  auto at = log.find("listening on 127.0.0.1:");
  REQUIRE(at != std::string::npos);
  auto port = std::stoi(log.substr(at + std::string("listening on 127.0.0.1:").size()));
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  auto plain = http_call(base, "", "GET", "/v1/token/privicore");
  CHECK(plain.status == 412);
  CHECK(plain.json()["error"] == "missing_header");
  auto guarded = http_call(base, "", "GET", "/v1/token/privicore", {{"X-Token-Broker", "1"}}, {},
                           15s);
  CHECK(guarded.status == 200);
  auto browser = http_call(base, "", "GET", "/v1/token/privicore",
                           {{"X-Token-Broker", "1"}, {"Origin", "https://evil.example"}});
  CHECK(browser.status == 403);
  CHECK(http_call(base, "", "GET", "/healthz").status == 200);  // probes need no header
}
