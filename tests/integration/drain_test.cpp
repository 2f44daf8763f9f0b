// SIGTERM with requests in flight: they are answered, new connections are refused, the token
// the drain waited for is persisted, and the daemon exits 0 within its deadline.
#include <doctest/doctest.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

TEST_CASE("sigterm_lets_requests_waiting_on_a_refresh_finish_then_persists_and_exits_0") {
  // 20 s tokens; asking for 15 s of validity forces a refresh once 4-5 s have passed, and the
  // refreshed token satisfies it (20 s from the refresh request, less the whole-second expiry
  // and the slow answer below: at least 17 s, and 15 s plus the broker's 1 s safety margin
  // are needed).
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "20s"}));
  broker_fixture b(sim);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto r = b.call("GET", "/v1/token/privicore");
    REQUIRE(r.status == 200);
    if (r.json()["expires_in"].get<int>() <= 15) break;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(100ms);
  }
  // The refresh answer trickles in (one body byte every 6 ms: about 1.7 s), so the callers are
  // still waiting on it when SIGTERM arrives.
  const std::string refresh_path = "/oauth-application/refresh-access-token";
  sim.fault({{"path", refresh_path}, {"kind", "slow_body"}, {"interval_ms", 6}, {"count", 1}});

  constexpr int callers = 4;
  std::atomic<int> done{0}, connected{0};
  std::vector<http_result> results(callers);
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      results[i] = unix_call(b.socket_path(), "GET", "/v1/token/privicore?min_valid=15", {}, {},
                             30s, &connected);
      ++done;
    });
  }
  // In flight: every caller is connected, the simulator has the refresh request, and the
  // credential is refreshing.
  deadline = std::chrono::steady_clock::now() + 10s;
  while (!(connected == callers && sim.stats()["requests"].value(refresh_path, 0) >= 1 &&
           b.state() == "refreshing")) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(done == 0);

  auto t0 = std::chrono::steady_clock::now();
  b.proc().kill(SIGTERM);
  // New connections are refused while the callers are still being served.
  bool refused = false;
  int done_when_refused = -1;
  while (!refused && std::chrono::steady_clock::now() - t0 < 5s) {
    auto r = b.call("GET", "/healthz", {}, {}, 2s);
    if (r.status == 0 && r.error.starts_with("connect:")) {
      refused = true;
      done_when_refused = done;
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  CHECK(refused);
  CHECK(done_when_refused == 0);

  for (auto& t : threads) t.join();
  std::string drained_token;
  for (const auto& r : results) {
    REQUIRE_MESSAGE(r.status == 200, r.body, r.error, b.proc().stderr_text());
    CHECK(r.json()["expires_in"].get<int>() >= 15);
    auto token = r.json()["access_token"].get<std::string>();
    if (drained_token.empty()) drained_token = token;
    CHECK(token == drained_token);  // one refresh served every caller
  }
  CHECK(sim.check(drained_token)["valid"] == true);
  CHECK(sim.stats()["refreshes"] == 1);

  auto exit = b.proc().wait_exit(15s);
  REQUIRE(exit);
  CHECK_MESSAGE(exit->ok(), exit->describe());
  CHECK(std::chrono::steady_clock::now() - t0 < 11s);  // the 10 s drain deadline, and no more
  auto log = b.proc().stderr_text();
  CHECK(log.find("received SIGTERM") != std::string::npos);
  CHECK(log.find("still open") == std::string::npos);

  // Persisted: a new daemon on the same state serves the refreshed token without a grant or a
  // refresh (the rotated refresh token was saved, not lost with the stop).
  b.restart(SIGTERM);
  CHECK(b.token() == drained_token);
  auto stats = sim.stats();
  CHECK(stats["grants"] == 1);
  CHECK(stats["refreshes"] == 1);
}
