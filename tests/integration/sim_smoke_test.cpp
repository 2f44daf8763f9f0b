// privicore-sim driven directly over real sockets with raw requests (PROTOCOL.md §5, §6): the
// whole grant, the WebSocket acks, refresh modes, the data plane, faults, TLS and shutdown.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "http/beast.hpp"
#include "http/form.hpp"
#include "support/sim.hpp"
#include "support/ws_client.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;
using json = nlohmann::json;
namespace net = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

headers_list profile_header(const std::string& token) {
  return {{"X-DPT-AUTHORIZATION", token}};
}

// A command id in any of the three shapes of PROTOCOL.md §3.1.
std::string command_id(const http_result& r) {
  auto j = r.json();
  if (j.is_string()) return j.get<std::string>();
  if (j.is_array() && j.size() == 1) return j[0].get<std::string>();
  return j.at("commandId").get<std::string>();
}

std::string authenticate(const sim_fixture& sim, const std::string& user, const std::string& pw) {
  auto r = sim.post_form("/profile/authenticate", {{"username", user}, {"password", pw}});
  REQUIRE(r.status == 200);
  return r.json().at("authorizationToken").get<std::string>();
}

bool is_ack(const json& m, const std::string& id, int status) {
  if (!m.is_object() || !m.contains("data") || !m["data"].is_object()) return false;
  const auto& d = m["data"];
  return d.value("type", "") == "X-DPT-CAB-ID" && d.value("id", "") == id &&
         d.value("command_status", 0) == status;
}

// Polls /request-status until the command leaves "started" (a condition, with a deadline).
std::string wait_status(const sim_fixture& sim, const std::string& id) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    auto r = sim.http_call("GET", "/request-status/" + id);
    REQUIRE(r.status == 200);
    auto j = r.json();
    auto word = j.is_array() ? j[0].get<std::string>() : j.get<std::string>();
    if (word != "started" || std::chrono::steady_clock::now() > deadline) return word;
    std::this_thread::sleep_for(20ms);
  }
}

std::string code_request_target(const std::string& client_id, const std::string& nonce) {
  tokenbroker::http::form f;
  f.add("client_id", client_id).add("nonce", nonce).add_array("scope", {"all"});
  return "/profile/oauth-application-request-authorization-code?" + f.encode();
}

struct tokens {
  std::string access, refresh;
};

// Steps 8–12 of PROTOCOL.md §6, polling instead of the WebSocket.
tokens run_grant(const sim_fixture& sim, const std::string& profile_token,
                 const std::string& client_id, const std::string& secret,
                 const std::string& nonce) {
  auto req =
      sim.http_call("GET", code_request_target(client_id, nonce), profile_header(profile_token));
  REQUIRE(req.status == 202);
  auto id = command_id(req);
  REQUIRE(wait_status(sim, id) == "succeeded");
  auto code = sim.post_form("/oauth-application/retrieve-authorization-code",
                            {{"id", id}, {"nonce", nonce}},
                            {{"Authorization", basic_auth(client_id, secret)}});
  REQUIRE(code.status == 200);
  auto tok = sim.post_form("/oauth-application/obtain-access-token",
                           {{"authorization_code", code.json()["authorizationCode"]}},
                           {{"Authorization", basic_auth(client_id, secret)}});
  REQUIRE(tok.status == 200);
  return {tok.json()["token"], tok.json()["refreshToken"]};
}

http_result refresh(const sim_fixture& sim, const tokens& t) {
  // Header A: the raw access token, not base64 (PROTOCOL.md §2).
  return sim.post_form("/oauth-application/refresh-access-token", {{"refresh_token", t.refresh}},
                       {{"Authorization", "Basic " + t.access}});
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
  return out;
}

}  // namespace

TEST_CASE("sim_runs_the_whole_grant_with_websocket_acks_and_refresh_modes") {
  sim_fixture sim({"--profile", "alice:pw", "--ack-delay", "30"});
  auto health = sim.http_call("GET", "/health");
  CHECK(health.status == 200);
  CHECK(health.json() == json{{"status", "ok"}});

  auto bad = sim.post_form("/profile/authenticate", {{"username", "alice"}, {"password", "no"}});
  CHECK(bad.status == 401);
  CHECK(bad.json()["error"] == "profile.invalid_credentials");
  auto owner = authenticate(sim, "alice", "pw");

  ws_client ws(sim.ws_url());
  auto joined = ws.join(owner);
  REQUIRE(joined.has_value());
  CHECK((*joined)["status"] == 200);
  CHECK(!(*joined)["data"]["channelId"].get<std::string>().empty());

  // Register the application; its id arrives as the command id and is acked on the socket.
  auto reg = sim.post_form(
      "/profile/oauth-application-register",
      {{"name", "broker"}, {"redirectUri", "https://b.example/cb"}, {"scopes", "all"}},
      profile_header(owner));
  REQUIRE(reg.status == 202);
  auto app_id = command_id(reg);
  bool saw_pending = false;
  auto ack = ws.wait_for(
      [&](const json& m) {
        saw_pending = saw_pending || is_ack(m, app_id, 1);
        return is_ack(m, app_id, 2);
      },
      5s);
  CHECK(ack.has_value());
  CHECK(saw_pending);

  auto cfg = sim.post_form("/profile/retrieve-oauth-application-configuration",
                           {{"applicationId", app_id}}, profile_header(owner));
  REQUIRE(cfg.status == 200);
  auto client_id = cfg.json()["clientId"].get<std::string>();
  auto secret = cfg.json()["clientSecret"].get<std::string>();
  auto again = sim.post_form("/profile/retrieve-oauth-application-configuration",
                             {{"applicationId", app_id}}, profile_header(owner));
  CHECK(again.status == 422);
  CHECK(again.json()["error"] == "oauth.already_retrieved");
  auto list =
      sim.http_call("GET", "/profile/retrieve-oauth-application-list", profile_header(owner));
  CHECK(list.json()["meta"]["count"] == 1);

  // Authorization code: request (acked on the socket), then retrieve with the nonce.
  auto creq =
      sim.http_call("GET", code_request_target(client_id, "nonce-1"), profile_header(owner));
  REQUIRE(creq.status == 202);
  auto request_id = command_id(creq);
  CHECK(ws.wait_for([&](const json& m) { return is_ack(m, request_id, 2); }, 5s).has_value());
  auto client = headers_list{{"Authorization", basic_auth(client_id, secret)}};
  auto wrong_nonce = sim.post_form("/oauth-application/retrieve-authorization-code",
                                   {{"id", request_id}, {"nonce", "other"}}, client);
  CHECK(wrong_nonce.status == 422);
  auto wrong_client = sim.post_form("/oauth-application/retrieve-authorization-code",
                                    {{"id", request_id}, {"nonce", "nonce-1"}},
                                    {{"Authorization", basic_auth(client_id, "bad")}});
  CHECK(wrong_client.status == 401);
  auto code = sim.post_form("/oauth-application/retrieve-authorization-code",
                            {{"id", request_id}, {"nonce", "nonce-1"}}, client);
  REQUIRE(code.status == 200);
  CHECK(code.json()["nonce"] == "nonce-1");

  auto obtained = sim.post_form("/oauth-application/obtain-access-token",
                                {{"authorization_code", code.json()["authorizationCode"]}}, client);
  REQUIRE(obtained.status == 200);
  auto tj = obtained.json();
  CHECK(tj["type"] == "bearer");
  CHECK(tj["scope"] == "all");
  CHECK(tj["clientId"] == client_id);
  tokens t{tj["token"], tj["refreshToken"]};
  auto reused_code =
      sim.post_form("/oauth-application/obtain-access-token",
                    {{"authorization_code", code.json()["authorizationCode"]}}, client);
  CHECK(reused_code.status == 401);
  CHECK(sim.check(t.access)["valid"] == true);

  // A reused nonce: the command is accepted, then rejected (status 3).
  auto reuse =
      sim.http_call("GET", code_request_target(client_id, "nonce-1"), profile_header(owner));
  REQUIRE(reuse.status == 202);
  auto reuse_id = command_id(reuse);
  CHECK(ws.wait_for([&](const json& m) { return is_ack(m, reuse_id, 3); }, 5s).has_value());

  // Refresh, 200 mode: both tokens rotate; the old ones die at once.
  auto r1 = refresh(sim, t);
  REQUIRE(r1.status == 200);
  tokens t2{r1.json()["token"], r1.json()["refreshToken"]};
  CHECK(t2.refresh != t.refresh);
  CHECK(refresh(sim, {t2.access, t.refresh}).status == 401);
  CHECK(sim.check(t.access)["reason"] == "superseded");
  CHECK(sim.check(t.refresh)["valid"] == false);
  CHECK(sim.http_call("GET", "/data-token/echo", profile_header(t.access)).status == 401);

  // Refresh, 202 mode: an empty body.
  CHECK(sim.config({{"refresh_mode", "202"}})["refresh_mode"] == "202");
  auto r2 = refresh(sim, t2);
  CHECK(r2.status == 202);
  CHECK(r2.body.empty());
  sim.config({{"refresh_mode", "200"}});

  // Data plane with the current token.
  auto echo = sim.http_call("PUT", "/data-token/echo?q=1",
                            {{"X-DPT-AUTHORIZATION", t2.access}, {"X-Custom", "v"}}, "abc");
  REQUIRE(echo.status == 200);
  CHECK(echo.json()["method"] == "PUT");
  CHECK(echo.json()["query"] == "q=1");
  CHECK(echo.json()["headers"]["x-custom"] == "v");
  CHECK(echo.json()["body_bytes"] == 3);

  // Command-id and status shapes, a rejected data command acked on the grantor's channel.
  sim.config({{"command_id_shape", "object"}, {"status_shape", "object"}});
  auto cmd =
      sim.http_call("POST", "/data-token/command?outcome=rejected", profile_header(t2.access));
  REQUIRE(cmd.status == 202);
  CHECK(cmd.json().is_object());
  auto cmd_id = command_id(cmd);
  CHECK(ws.wait_for([&](const json& m) { return is_ack(m, cmd_id, 3); }, 5s).has_value());
  auto st = sim.http_call("POST", "/request-status/" + cmd_id,
                          {{"Content-Type", "application/json"}}, "{}");
  CHECK(st.json()["command_status"] == 3);
  sim.config({{"status_method", "post"}, {"status_shape", "array"}});
  CHECK(sim.http_call("GET", "/request-status/" + cmd_id).status == 405);
  CHECK(sim.http_call("POST", "/request-status/" + cmd_id).json() == json::array({"rejected"}));
  CHECK(sim.http_call("POST", "/request-status/unknown-id").status == 404);

  auto stats = sim.stats();
  CHECK(stats["grants"] == 1);
  CHECK(stats["refreshes"] == 2);
  CHECK(stats["refresh_rejected"] == 1);
  CHECK(stats["codes_issued"] == 1);
  CHECK(stats["ws_connections"] == 1);
  CHECK(stats["acks_sent"].get<int>() >= 4);
  CHECK(stats["rejected_tokens"].get<int>() >= 2);
  std::set<std::string> types;
  for (const auto& e : sim.events()) types.insert(e["type"].get<std::string>());
  CHECK(types ==
        std::set<std::string>{"grant", "refresh_received", "refresh_answered", "refresh_rejected"});
}

TEST_CASE("sim_profile_session_calls_and_ack_before_response") {
  sim_fixture sim({"--profile", "carol:pw", "--ack-before-response", "--ack-delay", "10000"});
  auto token = authenticate(sim, "carol", "pw");
  ws_client ws(sim.ws_url("/any/path"));
  CHECK(ws.join("not-a-token").value()["status"] == 401);
  CHECK(ws.join(token).value()["status"] == 200);

  // With a 10 s ack delay, an ack within 2 s can only be the one pushed before the 202.
  auto reg = sim.post_form("/profile/oauth-application-register",
                           {{"name", "x"}, {"redirectUri", "https://x/cb"}, {"scopes", "all"}},
                           profile_header(token));
  INFO(reg.error, " / sim stderr: ", sim.proc().stderr_text());
  REQUIRE(reg.status == 202);
  auto id = command_id(reg);
  CHECK(ws.wait_for([&](const json& m) { return is_ack(m, id, 2); }, 2s).has_value());

  auto reg_profile =
      sim.post_form("/profile/register-profile", {{"username", "dave"}, {"password", "pw2"}});
  REQUIRE(reg_profile.status == 202);
  CHECK(wait_status(sim, command_id(reg_profile)) == "succeeded");
  CHECK(sim.post_form("/profile/register-profile", {{"username", "dave"}, {"password", "x"}})
            .status == 409);
  authenticate(sim, "dave", "pw2");

  auto expiry = sim.http_call("POST", "/profile/authorization-token/expiry", profile_header(token));
  CHECK(expiry.status == 200);
  CHECK(expiry.json().contains("expiresAt"));
  auto re = sim.post_form("/profile/reauthorize-authorization-token", {{"ttl", "86400"}},
                          profile_header(token));
  REQUIRE(re.status == 200);
  auto fresh = re.json()["authorizationToken"].get<std::string>();
  CHECK(
      sim.http_call("POST", "/profile/authorization-token/expiry", profile_header(token)).status ==
      401);
  CHECK(sim.check(token)["reason"] == "superseded");
  sim.config({{"reauthorize_mode", "202"}});
  auto re202 = sim.post_form("/profile/reauthorize-authorization-token", {{"ttl", "60"}},
                             profile_header(fresh));
  CHECK(re202.status == 202);
  CHECK(
      sim.http_call("POST", "/profile/revoke-authorization-token", profile_header(fresh)).status ==
      200);
  CHECK(sim.check(fresh)["reason"] == "revoked");
  CHECK(sim.http_call("GET", "/profile/retrieve-oauth-application-list", profile_header(fresh))
            .status == 401);
}

TEST_CASE("sim_seeded_app_streams_uploads_and_downloads_and_accepts_expired_current_token") {
  sim_fixture sim({"--profile", "bob:pw", "--app", "bob:cid-1:secret-1"});
  auto owner = authenticate(sim, "bob", "pw");
  auto t = run_grant(sim, owner, "cid-1", "secret-1", "n-1");

  // Upload with Content-Length.
  std::string data(4 * 1024 * 1024 + 7, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 7919) % 256);
  auto up = sim.http_call(
      "POST", "/data-token/upload",
      {{"X-DPT-AUTHORIZATION", t.access}, {"Content-Type", "application/octet-stream"}}, data, 20s);
  REQUIRE(up.status == 200);
  CHECK(up.json()["bytes"] == data.size());
  CHECK(up.json()["sha256"] == sha256_hex(data));

  // Upload with chunked encoding, written by hand.
  {
    net::io_context ioc;
    net::ip::tcp::socket sock(ioc);
    sock.connect({net::ip::make_address("127.0.0.1"), sim.port()});
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/data-token/upload", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set("X-DPT-AUTHORIZATION", t.access);
    req.body() = data;
    req.chunked(true);
    bhttp::write(sock, req);
    boost::beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(sock, buf, res);
    CHECK(res.result_int() == 200);
    CHECK(json::parse(res.body())["sha256"] == sha256_hex(data));
  }
  auto denied = sim.http_call("POST", "/data-token/upload", {{"X-DPT-AUTHORIZATION", "nope"}}, "x");
  CHECK(denied.status == 401);

  // Download: chunked, the i % 251 pattern.
  const std::size_t n = 3 * 1024 * 1024 + 13;
  auto down = sim.http_call("GET", "/data-token/download?bytes=" + std::to_string(n),
                            profile_header(t.access), {}, 20s);
  REQUIRE(down.status == 200);
  CHECK(down.header("transfer-encoding") == "chunked");
  REQUIRE(down.body.size() == n);
  bool pattern_ok = true;
  for (std::size_t i = 0; i < n && pattern_ok; ++i)
    pattern_ok = static_cast<unsigned char>(down.body[i]) == i % 251;
  CHECK(pattern_ok);

  // An expired but current access token may refresh; the data plane refuses it.
  sim.expire(t.access);
  CHECK(sim.http_call("GET", "/data-token/echo", profile_header(t.access)).status == 401);
  auto r = refresh(sim, t);
  CHECK(r.status == 200);
  tokens t2{r.json()["token"], r.json()["refreshToken"]};
  CHECK(
      sim.http_call("POST", "/oauth-application/retrieve-oauth-application-scope", {}, {}).status ==
      401);
  auto scope = sim.http_call("GET", "/oauth-application/retrieve-oauth-application-scope",
                             {{"Authorization", "Basic " + t2.access}});
  CHECK(scope.json()["scopes"] == json::array({"all"}));

  // Revoking the client's grants kills both tokens.
  CHECK(sim.revoke_grants("cid-1") == 1);
  CHECK(refresh(sim, t2).status == 401);
  CHECK(sim.check(t2.access)["reason"] == "revoked");
}

TEST_CASE("sim_injects_every_fault_kind") {
  sim_fixture sim({"--fault", R"({"path":"/health","kind":"status","status":503,"count":1})"});
  auto s = sim.http_call("GET", "/health");
  CHECK(s.status == 503);
  CHECK(s.json()["error"] == "sim.fault");
  CHECK(sim.http_call("GET", "/health").status == 200);

  sim.fault({{"path", "/health"},
             {"kind", "retry_after"},
             {"status", 429},
             {"retry_after", 2},
             {"count", 1}});
  auto ra = sim.http_call("GET", "/health");
  CHECK(ra.status == 429);
  CHECK(ra.header("retry-after") == "2");

  sim.fault({{"path", "/health"}, {"kind", "malformed"}, {"count", 1}});
  auto bad = sim.http_call("GET", "/health");
  CHECK(bad.status == 200);
  CHECK(json::parse(bad.body, nullptr, false).is_discarded());

  sim.fault({{"path", "/health"}, {"kind", "hang"}, {"count", 1}});
  auto hang = sim.http_call("GET", "/health", {}, {}, 300ms);
  CHECK(hang.status == 0);
  CHECK(hang.error.find("timeout") != std::string::npos);

  sim.fault({{"path", "/health"}, {"kind", "reset"}, {"count", 1}});
  auto reset = sim.http_call("GET", "/health");
  CHECK(reset.status == 0);
  CHECK(!reset.error.empty());

  sim.fault({{"path", "/health"}, {"kind", "slow_body"}, {"interval_ms", 40}, {"count", 1}});
  auto start = std::chrono::steady_clock::now();
  auto slow = sim.http_call("GET", "/health");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(slow.status == 200);
  CHECK(slow.json() == json{{"status", "ok"}});
  CHECK(took >= 40ms * (slow.body.size() - 1));

  // "*" until cleared; the admin API is never faulted.
  sim.fault({{"path", "*"}, {"kind", "status"}, {"status", 500}});
  CHECK(sim.http_call("GET", "/health").status == 500);
  CHECK(sim.http_call("GET", "/profile/retrieve-oauth-application-list").status == 500);
  CHECK(sim.stats()["faults_applied"] == 8);
  sim.clear_faults();
  CHECK(sim.http_call("GET", "/health").status == 200);
  CHECK(sim.stats()["requests"]["/health"] == 9);
}

TEST_CASE("sim_serves_https_and_wss_verified_against_the_written_ca") {
  sim_fixture sim({"--tls", "--profile", "erin:pw"});
  REQUIRE(sim.url().starts_with("https://127.0.0.1:"));
  auto ok = sim.http_call("GET", "/health");
  CHECK(ok.status == 200);
  auto by_name =
      http_call("https://localhost:" + std::to_string(sim.port()), sim.ca_file(), "GET", "/health");
  CHECK(by_name.status == 200);
  auto untrusted = http_call(sim.url(), "", "GET", "/health");
  CHECK(untrusted.status == 0);
  CHECK(untrusted.error.find("tls") != std::string::npos);

  ws_client ws(sim.ws_url(), sim.ca_file());
  CHECK(ws.join(authenticate(sim, "erin", "pw")).value()["status"] == 200);

  auto exit = sim.proc().terminate(5s);
  CHECK(exit.ok());
}

TEST_CASE("sim_serves_1000_concurrent_keep_alive_connections") {
  sim_fixture sim;
  net::io_context ioc;
  std::vector<net::ip::tcp::socket> socks;
  std::vector<boost::beast::flat_buffer> bufs(1000);
  net::ip::tcp::endpoint ep{net::ip::make_address("127.0.0.1"), sim.port()};
  for (int i = 0; i < 1000; ++i) {
    socks.emplace_back(ioc);
    socks.back().connect(ep);
  }
  const std::string get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  int answered = 0;
  for (int round = 0; round < 2; ++round) {
    for (auto& s : socks) net::write(s, net::buffer(get));
    for (std::size_t i = 0; i < socks.size(); ++i) {
      bhttp::response<bhttp::string_body> res;
      bhttp::read(socks[i], bufs[i], res);
      if (res.result_int() == 200) ++answered;
    }
  }
  CHECK(answered == 2000);
  CHECK(sim.stats()["open_connections"].get<int>() >= 1000);
}
