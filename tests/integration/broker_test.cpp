// tokenbrokerd against privicore-sim, real processes and sockets: the broker's promises to its
// callers. The simulator, not the broker, judges whether a token handed out was valid.
#include <doctest/doctest.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("the_broker_grants_by_itself_and_serves_a_token_the_simulator_accepts") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto r = b.call("GET", "/v1/token/privicore");
  REQUIRE(r.status == 200);
  CHECK(r.header("cache-control") == "no-store");
  auto body = r.json();
  auto token = body["access_token"].get<std::string>();
  CHECK(body["token_type"] == "bearer");
  CHECK(body["expires_in"].get<int>() > 20);
  CHECK(body["expires_at"].get<std::string>().ends_with("Z"));
  CHECK(sim.check(token)["valid"] == true);
  CHECK(sim.check(token)["kind"] == "access");
  auto stats = sim.stats();
  CHECK(stats["grants"] == 1);
  CHECK(stats["authentications"] == 1);

  auto creds = b.call("GET", "/v1/credentials");
  REQUIRE(creds.status == 200);
  CHECK(creds.body.find(token) == std::string::npos);
  auto c = creds.json()["credentials"][0];
  CHECK(c["name"] == "privicore");
  CHECK(c["provider"] == "privicore");
  CHECK(c["state"] == "fresh");
  CHECK(c["last_error"].is_null());
  CHECK(c["refresh_at"].is_string());

  CHECK(b.call("GET", "/healthz").status == 200);
  CHECK(b.call("GET", "/readyz").status == 200);
  auto metrics = b.call("GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find(token) == std::string::npos);
  CHECK(metrics.body.find("tokenbroker_refresh_total{credential=\"privicore\",result=\"grant\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("tokenbroker_credential_state{credential=\"privicore\",state=\"fresh\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("tokenbroker_build_info{version=") != std::string::npos);

  auto unknown = b.call("GET", "/v1/token/nope");
  CHECK(unknown.status == 404);
  CHECK(unknown.json()["error"] == "unknown_credential");
  CHECK(b.call("POST", "/v1/token/privicore").status == 405);
  CHECK(b.call("GET", "/v1/nothing").json()["error"] == "not_found");
  CHECK(b.call("GET", "/v1/token/privicore?min_valid=soon").status == 400);
  CHECK(b.call("GET", "/v1/token/privicore?min_valid=999999").status == 400);
  // A token valid at least 25 s more: the current one (30 s tokens) may need a refresh first.
  auto longer = b.call("GET", "/v1/token/privicore?min_valid=20");
  REQUIRE(longer.status == 200);
  CHECK(longer.json()["expires_in"].get<int>() >= 20);
}

TEST_CASE("the_grant_works_by_polling_request_status_when_no_websocket_is_configured") {
  // POST-only request-status (PRB) and array-shaped command ids: the broker must detect both.
  sim_fixture sim(sim_flags_for_broker({"--status-method", "post", "--command-id-shape", "array"}));
  broker_options o;
  o.websocket = false;
  broker_fixture b(sim, o);
  auto token = b.token();
  CHECK(sim.check(token)["valid"] == true);
  CHECK(sim.stats()["grants"] == 1);
}

TEST_CASE("a_forced_refresh_rotates_tokens_and_the_old_refresh_token_is_not_reused") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto first = b.token();
  auto r = b.call("POST", "/v1/credentials/privicore/refresh");
  REQUIRE(r.status == 200);
  CHECK(r.json()["state"] == "fresh");
  auto second = b.token();
  CHECK(second != first);
  CHECK(sim.check(second)["valid"] == true);
  CHECK(sim.check(first)["valid"] == false);  // the simulator invalidates the replaced token
  auto stats = sim.stats();
  CHECK(stats["refreshes"] == 1);
  CHECK(stats["refresh_rejected"] == 0);
}

TEST_CASE("a_refresh_answered_202_without_a_body_keeps_the_token_and_regrants") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto first = b.token();
  sim.config({{"refresh_mode", "202"}});
  auto r = b.call("POST", "/v1/credentials/privicore/refresh");
  CHECK(r.status == 503);  // the forced refresh itself produced no token
  // The current token keeps being served while valid, and the broker re-grants by itself.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string now_serving = first;
  while (now_serving == first && std::chrono::steady_clock::now() < deadline)
    now_serving = b.token();
  CHECK(now_serving != first);
  CHECK(sim.check(now_serving)["valid"] == true);
  CHECK(sim.stats()["grants"] == 2);
  auto metrics = b.call("GET", "/metrics").body;
  CHECK(metrics.find("result=\"accepted_without_token\"} 1") != std::string::npos);
}

TEST_CASE("malformed_and_oversized_requests_get_a_400_json_error_and_the_broker_lives_on") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto raw = [&](const std::string& bytes) {
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket s(io);
    s.connect(boost::asio::local::stream_protocol::endpoint(b.socket_path()));
    boost::system::error_code ec;
    // The broker may answer and close before it has read all of an oversized request, so the
    // rest of the write can fail (EPIPE); its answer is still there to read.
    boost::asio::write(s, boost::asio::buffer(bytes), ec);
    ec.clear();
    std::string out;
    char buf[4096];
    for (std::size_t n; (n = s.read_some(boost::asio::buffer(buf), ec)) > 0 && !ec;)
      out.append(buf, n);
    return out;
  };
  auto garbage = raw("NOT HTTP AT ALL\r\n\r\n");
  CHECK(garbage.starts_with("HTTP/1.1 400"));
  CHECK(garbage.find("\"error\":\"bad_request\"") != std::string::npos);
  auto huge_header = raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') +
                         "\r\n\r\n");
  CHECK(huge_header.starts_with("HTTP/1.1 413"));
  auto huge_body = raw("POST /v1/credentials/privicore/login HTTP/1.1\r\nHost: x\r\n"
                       "Content-Length: 10000000\r\n\r\n" + std::string(100 * 1024, '{'));
  CHECK(huge_body.starts_with("HTTP/1.1 413"));
  auto bad_json = b.call("POST", "/v1/credentials/privicore/login", {}, "{not json");
  CHECK(bad_json.status == 400);
  CHECK(b.call("GET", "/healthz").status == 200);
}

TEST_CASE("tokenbrokerctl_token_exec_status_and_exit_codes") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {bin_path("tokenbrokerctl"), "--socket", b.socket_path()});
    process p(process_options{args, {}, {}, b.dir().file("ctl.err")});
    std::string out;
    while (auto line = p.read_line(15s)) out += *line + "\n";
    auto st = p.wait_exit(15s);
    REQUIRE(st.has_value());
    return std::make_pair(st->code, out);
  };
  auto [code, token] = ctl({"token", "privicore"});
  CHECK(code == 0);
  REQUIRE(token.size() > 1);
  token.pop_back();  // newline
  CHECK(sim.check(token)["valid"] == true);
  auto [exec_code, exec_out] = ctl({"exec", "privicore", "--", "sh", "-c", "printf '%s\\n' \"$TOKENBROKER_TOKEN\""});
  CHECK(exec_code == 0);
  CHECK(exec_out == token + "\n");
  auto [status_code, table] = ctl({"status"});
  CHECK(status_code == 0);
  CHECK(table.find("privicore") != std::string::npos);
  CHECK(table.find("fresh") != std::string::npos);
  CHECK(table.find(token) == std::string::npos);
  CHECK(ctl({"token", "nope"}).first == 1);        // the broker said no
  CHECK(ctl({"token"}).first == 2);                // usage
  CHECK(ctl({"frobnicate"}).first == 2);
  process unreachable(process_options{{bin_path("tokenbrokerctl"), "--socket", "/nonexistent.sock",
                                       "status"}, {}, {}, b.dir().file("ctl2.err")});
  auto st = unreachable.wait_exit(15s);
  REQUIRE(st.has_value());
  CHECK(st->code == 3);
}
