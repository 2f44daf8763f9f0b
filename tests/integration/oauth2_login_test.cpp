// The authorization_code grant with PKCE, end to end: tokenbrokerctl login prints the URL, a
// headless browser logs in on the real provider's pages and follows the redirect to the
// daemon's loopback listener, the daemon exchanges the code and lives on the refresh token.
#include <doctest/doctest.h>

#include <functional>
#include <thread>

#include "core/secret.hpp"
#include "http/form.hpp"
#include "oauth2/requests.hpp"
#include "oauth2_fixture.hpp"

using namespace tokenbroker;
using namespace tokenbroker::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

std::string code_grant(const oidc_peer& peer, const std::string& extra = {}) {
  return "[credential.app]\nprovider = \"oauth2\"\ngrant = \"authorization_code\"\n"
         "issuer = \"" + peer.url() + "\"\nclient_id = \"app\"\n"
         "client_secret_file = \"{dir}/cs\"\nscope = \"openid offline_access\"\n"
         "refresh_margin = \"1s\"\ntimeout = \"10s\"\n" + extra + "\n";
}

http::form query_of(const std::string& url) {
  auto q = http::form::parse(url.substr(url.find('?') + 1));
  REQUIRE(q.has_value());
  return *q;
}

std::string param(const http::form& f, const std::string& name) {
  auto v = f.get(name);
  return v ? *v : std::string{};
}

// Starts `tokenbrokerctl login app` and returns it with the authorization URL it printed.
std::pair<std::unique_ptr<process>, std::string> start_login(const oauth2_broker& broker) {
  auto ctl = broker.ctl({"login", "app"});
  auto line = ctl->wait_for_line([](const std::string& l) { return l.starts_with("  http"); }, 30s);
  if (!line) FAIL("tokenbrokerctl printed no URL: " << ctl->stderr_text());
  return {std::move(ctl), line->substr(2)};
}

}  // namespace

TEST_CASE("authorization_code_with_pkce_logs_in_through_the_browser_and_lives_on_refresh") {
  oidc_peer peer{3s};
  oauth2_broker broker{code_grant(peer), {{"cs", app_secret}}};
  CHECK(broker.status("app")["state"] == "needs_grant");
  CHECK(broker.call("GET", "/v1/token/app").status == 503);

  auto [ctl, url] = start_login(broker);
  CHECK(url.starts_with(peer.url() + "/auth?response_type=code&client_id=app&redirect_uri="));
  auto q = query_of(url);
  auto redirect_uri = param(q, "redirect_uri");
  CHECK(redirect_uri.starts_with("http://127.0.0.1:"));
  CHECK(redirect_uri.ends_with("/callback"));
  CHECK(param(q, "scope") == "openid offline_access");
  CHECK(param(q, "code_challenge_method") == "S256");
  CHECK(param(q, "state").size() >= 32);

  browser b;
  auto callback = b.authorize(url, person, person_password);
  REQUIRE(callback.starts_with(redirect_uri + "?"));
  auto cq = query_of(callback);
  CHECK(param(cq, "state") == param(q, "state"));
  auto page = b.request("GET", callback);
  CHECK(page.status == 200);
  CHECK(page.body.find("Logged in") != std::string::npos);
  auto exit = ctl->wait_exit(60s);
  REQUIRE(exit.has_value());
  CHECK(exit->ok());
  auto said = ctl->wait_for_line(
      [](const std::string& l) { return l.starts_with("app: logged in; state fresh"); }, 10s);
  CHECK(said.has_value());
  // Exactly one callback: the listener is gone.
  CHECK_THROWS(b.request("GET", callback));

  // The exchange: the code, the same redirect_uri, and the verifier behind the challenge.
  auto log = peer.token_requests();
  REQUIRE(!log.empty());
  auto exchange = http::form::parse(log[0]["body"].get<std::string>()).value();
  auto verifier = param(exchange, "code_verifier");
  CHECK(verifier.size() == 43);
  CHECK(oauth2::code_challenge_s256(secret{verifier}) == param(q, "code_challenge"));
  CHECK(log[0]["body"] == "grant_type=authorization_code&code=" + param(cq, "code") +
                              "&redirect_uri=" + http::url_encode(redirect_uri) +
                              "&code_verifier=" + verifier + "&client_id=app&client_secret=" +
                              app_secret);
  CHECK(log[0]["status"] == 200);
  REQUIRE(log[0]["issued_refresh_token"].is_string());

  // From then on the credential lives on the refresh token, rotated each time.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (peer.token_requests().size() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  log = peer.token_requests();
  INFO(broker.proc().stderr_text());
  REQUIRE(log.size() >= 4);
  for (std::size_t i = 1; i < log.size(); ++i) {
    CAPTURE(log[i].dump());
    CHECK(log[i]["grant_type"] == "refresh_token");
    CHECK(log[i]["status"] == 200);
    CHECK(log[i]["sent_refresh_token"] == log[i - 1]["issued_refresh_token"]);
  }
  auto token = broker.token("app");
  bool issued = false;
  for (const auto& r : peer.token_requests())
    issued = issued || (r.contains("access_token") && r["access_token"] == token);
  CHECK(issued);
}

TEST_CASE("a_denied_consent_fails_the_login_and_the_credential_still_needs_a_grant") {
  oidc_peer peer;
  oauth2_broker broker{code_grant(peer), {{"cs", app_secret}}};
  auto [ctl, url] = start_login(broker);
  browser b;
  auto callback = b.authorize(url, person, person_password, false);
  CHECK(param(query_of(callback), "error") == "access_denied");
  auto page = b.request("GET", callback);
  CHECK(page.body.find("Login failed") != std::string::npos);
  auto exit = ctl->wait_exit(60s);
  REQUIRE(exit.has_value());
  CHECK(exit->exited);
  CHECK(exit->code == 1);
  CHECK(ctl->stderr_text().find("access_denied") != std::string::npos);
  CHECK(broker.status("app")["state"] == "needs_grant");
  CHECK(peer.token_requests().empty());
}

TEST_CASE("a_browser_login_nobody_completes_ends_at_login_timeout") {
  oidc_peer peer;
  oauth2_broker broker{code_grant(peer, "login_timeout = \"2s\"\n"), {{"cs", app_secret}}};
  auto [ctl, url] = start_login(broker);
  auto exit = ctl->wait_exit(60s);
  REQUIRE(exit.has_value());
  CHECK(exit->code == 1);
  CHECK(ctl->stderr_text().find("no answer from the browser within 2 s") != std::string::npos);
  auto redirect = http::url::parse(param(query_of(url), "redirect_uri")).value();
  browser b;
  CHECK_THROWS(b.request("GET", redirect.origin() + "/callback"));
  CHECK(broker.status("app")["state"] == "needs_grant");
}

TEST_CASE("a_new_login_replaces_a_pending_one_and_waiting_needs_a_started_login") {
  oidc_peer peer;
  oauth2_broker broker{code_grant(peer), {{"cs", app_secret}}};
  auto none = broker.call("POST", "/v1/credentials/app/login", R"({"wait":true})");
  CHECK(none.status == 400);
  auto first = broker.call("POST", "/v1/credentials/app/login");
  REQUIRE(first.status == 202);
  auto second = broker.call("POST", "/v1/credentials/app/login", "{}");
  REQUIRE(second.status == 202);
  auto first_redirect = first.json()["redirect_uri"].get<std::string>();
  auto second_url = second.json()["authorization_url"].get<std::string>();
  CHECK(second.json()["redirect_uri"] != first_redirect);
  browser b;
  CHECK_THROWS(b.request("GET", first_redirect + "?code=x&state=y"));  // closed

  auto callback = b.authorize(second_url, person, person_password);
  CHECK(b.request("GET", callback).status == 200);
  auto done = broker.call("POST", "/v1/credentials/app/login", R"({"wait":true})");
  CHECK(done.status == 200);
  CHECK(done.json()["state"] == "fresh");
}

TEST_CASE("check_refuses_a_redirect_uri_off_loopback_and_a_code_grant_without_authorization_url") {
  temp_dir dir;
  write_secret(dir, "cs", "x");
  auto cfg = write_secret(
      dir, "bad.toml",
      "[server]\nsocket = \"" + dir.file("s.sock") + "\"\n"
      "[credential.a]\nprovider = \"oauth2\"\ngrant = \"authorization_code\"\n"
      "issuer = \"https://idp.example.com\"\nclient_id = \"c\"\n"
      "redirect_uri = \"http://192.0.2.1:8080/callback\"\n"
      "[credential.b]\nprovider = \"oauth2\"\ngrant = \"authorization_code\"\n"
      "token_url = \"https://idp.example.com/token\"\nclient_id = \"c\"\n"
      "[credential.c]\nprovider = \"oauth2\"\ngrant = \"client_credentials\"\n"
      "token_url = \"https://idp.example.com/token\"\nclient_id = \"c\"\n"
      "client_secret_file = \"" + dir.file("cs") + "\"\nlogin_timeout = \"1m\"\n");
  process_options o;
  o.argv = {bin_path("tokenbrokerd"), "--check", "--config", cfg};
  process check{o};
  auto exit = check.wait_exit(30s);
  REQUIRE(exit.has_value());
  CHECK(exit->code == 1);
  auto err = check.stderr_text();
  CHECK(err.find(cfg + ": credential.a.redirect_uri: must be http://127.0.0.1") != std::string::npos);
  CHECK(err.find(cfg + ": credential.b.authorization_url: is required") != std::string::npos);
  CHECK(err.find(cfg + ": credential.c.login_timeout: is used by grant = \"authorization_code\"") !=
        std::string::npos);
}
