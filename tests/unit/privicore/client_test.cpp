// The client and the §6 flows against an in-process HTTP server that records what it received.
#include "privicore/client.hpp"

#include <doctest/doctest.h>

#include "fakes.hpp"
#include "http/form.hpp"
#include "privicore/grant.hpp"

using namespace tokenbroker;
using namespace tokenbroker::privicore;
using namespace tokenbroker::privicore::test;

namespace {

std::string header(const http::request& r, std::string_view name) {
  auto it = r.find(name);
  return it == r.end() ? "<none>" : std::string(it->value());
}

std::string path_of(const http::request& r) {
  std::string_view t = r.target();
  return std::string(t.substr(0, t.find('?')));
}

const secret profile{"prof-token-1"};

}  // namespace

// --- command status method detection ----------------------------------------------------------

TEST_CASE("command_status_detects_post_after_get_404_and_remembers_it") {
  fixture fx;
  fx.http_server.respond = [](const http::request& r) {
    return r.method() == http::verb::get ? json_answer(404, "") : json_answer(200, R"("succeeded")");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto first = co_await api.command_status("cmd-1", &profile);
    REQUIRE(first.has_value());
    CHECK(first->state == command_state::succeeded);
    CHECK(api.detected_status_method() == status_method::post);
    auto second = co_await api.command_status("cmd-2", &profile);
    CHECK(second.has_value());
  });
  auto& got = fx.http_server.requests;
  REQUIRE(got.size() == 3);
  CHECK(got[0].method() == http::verb::get);
  CHECK(got[0].target() == "/base/request-status/cmd-1");
  CHECK(got[1].method() == http::verb::post);
  CHECK(got[1].target() == "/base/request-status/cmd-1");
  CHECK(header(got[1], "Content-Type") == "application/json");
  CHECK(got[1].body() == "{}");
  CHECK(header(got[1], "X-DPT-AUTHORIZATION") == "prof-token-1");
  CHECK(got[2].method() == http::verb::post);  // remembered: no second GET
  CHECK(got[2].target() == "/base/request-status/cmd-2");
}

TEST_CASE("command_status_remembers_get_when_get_answers") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(200, R"(["started"])"); };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.command_status("cmd-1", nullptr);
    CHECK(r.value().state == command_state::pending);
    CHECK(api.detected_status_method() == status_method::get);
    auto again = co_await api.command_status("cmd-1", nullptr);
    CHECK(again.has_value());
  });
  REQUIRE(fx.http_server.requests.size() == 2);
  for (const auto& r : fx.http_server.requests) {
    CHECK(r.method() == http::verb::get);
    CHECK(header(r, "X-DPT-AUTHORIZATION") == "<none>");
  }
}

TEST_CASE("command_status_404_from_both_methods_is_not_found") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(404, ""); };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.command_status("nope", &profile);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::not_found);
    CHECK(api.detected_status_method() == status_method::automatic);
  });
  CHECK(fx.http_server.requests.size() == 2);
}

TEST_CASE("command_status_get_405_then_post_404_is_not_found_and_remembers_post") {
  fixture fx;
  fx.http_server.respond = [](const http::request& r) {
    return json_answer(r.method() == http::verb::get ? 405 : 404, "");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.command_status("nope", &profile);
    CHECK(r.error().code == errc::not_found);
    CHECK(api.detected_status_method() == status_method::post);
  });
}

TEST_CASE("configured_post_status_method_never_tries_get") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(404, ""); };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(2s, status_method::post);
    auto r = co_await api.command_status("cmd", &profile);
    CHECK(r.error().code == errc::not_found);
  });
  REQUIRE(fx.http_server.requests.size() == 1);
  CHECK(fx.http_server.requests[0].method() == http::verb::post);
}

// --- transport and error mapping --------------------------------------------------------------

TEST_CASE("client_maps_a_server_that_never_answers_to_timeout") {
  fixture fx;
  fx.http_server.silent = true;
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(150ms);
    auto start = steady_clock::now();
    auto r = co_await api.health();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::timeout);
    CHECK(r.error().message.starts_with("GET /base/health: "));
    CHECK(steady_clock::now() - start < 1s);
  });
  CHECK(fx.http_server.requests.size() == 1);
}

TEST_CASE("client_maps_a_refused_connection_to_transport") {
  fixture fx;
  tcp::acceptor closed(fx.ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  auto port = closed.local_endpoint().port();
  closed.close();
  fx.run([&]() -> awaitable<void> {
    client api{fx.http, http::url::parse("http://127.0.0.1:" + std::to_string(port)).value(), 1s};
    auto r = co_await api.health();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::transport);
  });
}

TEST_CASE("client_errors_name_the_call_and_never_contain_sent_secrets") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) {
    return json_answer(401, R"({"message":"bad password hunter22 for alice"})");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.authenticate("alice", secret{"hunter22"});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::http_status);
    CHECK(r.error().status == 401);
    CHECK(r.error().message ==
          "POST /base/profile/authenticate: Unauthorized: bad password <redacted> for alice");
  });
}

TEST_CASE("client_scrubs_echoed_basic_credentials_from_errors") {
  fixture fx;
  fx.http_server.respond = [](const http::request& r) {
    return json_answer(401, R"({"message":"bad header )" + header(r, "Authorization") + "\"}");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    client_credentials creds{"cid-1", secret{"s3cret"}};
    auto r = co_await api.retrieve_authorization_code(creds, "req-1", "n");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message.find("Y2lkLTE6czNjcmV0") == std::string::npos);
    CHECK(r.error().message.find("<redacted>") != std::string::npos);
  });
}

TEST_CASE("a_token_with_a_line_break_is_refused_before_anything_is_sent") {
  fixture fx;
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.token_expiry(secret{"tok\r\nX-Injected: 1"});
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().message.find("Injected") == std::string::npos);
  });
  CHECK(fx.http_server.requests.empty());
}

TEST_CASE("authenticate_sends_the_exact_form_and_returns_the_profile_token") {
  fixture fx;
  fx.http_server.respond = in_order({json_answer(
      200, R"({"authorizationToken":"pt-1","expiresAt":"2026-02-21T15:33:44+00:00"})")});
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.authenticate("alice", secret{"pw"});
    REQUIRE(r.has_value());
    CHECK(r->token.reveal() == "pt-1");
    CHECK(r->expires_at == parse_timestamp("2026-02-21T15:33:44Z"));
  });
  REQUIRE(fx.http_server.requests.size() == 1);
  const auto& req = fx.http_server.requests[0];
  CHECK(req.target() == "/base/profile/authenticate");
  CHECK(req.body() == "username=alice&password=pw");
  CHECK(header(req, "Host") == fx.http_server.url().host_header());
}

TEST_CASE("retrieve_configuration_already_retrieved_says_the_secret_is_gone") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) {
    return json_answer(422, R"({"error":"oauth.already_retrieved"})");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.retrieve_configuration(profile, "app-1");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 422);
    CHECK(r.error().message.find("only once") != std::string::npos);
    CHECK(r.error().message.find("app-1") != std::string::npos);
  });
}

TEST_CASE("application_scope_falls_back_from_post_to_get_on_405") {
  fixture fx;
  fx.http_server.respond = [](const http::request& r) {
    return r.method() == http::verb::post ? json_answer(405, "")
                                          : json_answer(200, R"({"scope":["all"]})");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.application_scope(secret{"at-1"}, "app-1");
    REQUIRE(r.has_value());
    CHECK((*r)["scope"][0] == "all");
  });
  REQUIRE(fx.http_server.requests.size() == 2);
  CHECK(fx.http_server.requests[1].target() ==
        "/base/oauth-application/retrieve-oauth-application-scope?applicationId=app-1");
  CHECK(header(fx.http_server.requests[1], "Authorization") == "Basic at-1");
}

TEST_CASE("refresh_answered_202_without_body_reports_no_new_token") {
  fixture fx;
  fx.http_server.respond = in_order({json_answer(202, "")});
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    auto r = co_await api.refresh_access_token(secret{"at-1"}, secret{"rt-1"});
    REQUIRE(r.has_value());
    CHECK_FALSE(r->tokens.has_value());
  });
  CHECK(header(fx.http_server.requests.at(0), "Authorization") == "Basic at-1");
  CHECK(fx.http_server.requests.at(0).body() == "refresh_token=rt-1");
}

// --- §6 flows -----------------------------------------------------------------------------------

namespace {

/// A Privicore double for the grant: a request id, `pending_polls` "started" answers, then
/// `final_status`; the code echoes the nonce it was given (or `code_nonce` when set).
struct grant_server {
  int pending_polls = 1;
  std::string final_status = R"("succeeded")";
  std::optional<std::string> code_nonce;

  http::response operator()(const http::request& r) {
    auto path = path_of(r);
    if (path == "/base/profile/oauth-application-request-authorization-code")
      return json_answer(202, R"(["req-1"])");
    if (path == "/base/request-status/req-1")
      return json_answer(200, pending_polls-- > 0 ? R"("started")" : final_status);
    if (path == "/base/oauth-application/retrieve-authorization-code") {
      auto f = http::form::parse(r.body()).value();
      nlohmann::json j{{"clientId", "cid-1"},
                       {"nonce", code_nonce.value_or(f.get("nonce").value_or(""))},
                       {"authorizationCode", "ac-1"},
                       {"expiresAt", "2030-01-01T00:00:00+00:00"}};
      return json_answer(200, j.dump());
    }
    if (path == "/base/oauth-application/obtain-access-token")
      return json_answer(200, R"({"clientId":"cid-1","token":"at-1","refreshToken":"rt-1",
          "type":"bearer","scope":"all","expiresAt":"2030-01-01T00:00:00+00:00",
          "refreshTokenExpiresAt":"2030-02-01T00:00:00Z"})");
    return json_answer(404, "");
  }
};

flow_options fast_flow() { return flow_options{200ms, 5ms}; }

}  // namespace

TEST_CASE("authorization_grant_by_polling_replays_the_nonce_and_returns_tokens") {
  fixture fx;
  fx.http_server.respond = grant_server{};
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    client_credentials creds{"cid-1", secret{"s3cret"}};
    std::vector<std::string> scopes{"all"};  // a braced list here trips GCC 12 in coroutines
    auto r = co_await run_authorization_grant(api, nullptr, creds, profile, scopes,
                                              steady_clock::now() + 3s, fast_flow());
    REQUIRE(r.has_value());
    CHECK(r->access_token.reveal() == "at-1");
    CHECK(r->refresh_token.reveal() == "rt-1");
    CHECK(r->refresh_expires_at == parse_timestamp("2030-02-01T00:00:00Z"));
  });
  auto& got = fx.http_server.requests;
  REQUIRE(got.size() == 5);
  auto query = http::form::parse(std::string_view(got[0].target()).substr(
                                     got[0].target().find('?') + 1))
                   .value();
  auto nonce = query.get("nonce").value();
  CHECK(nonce.size() >= 32);
  CHECK(query.get("client_id") == "cid-1");
  CHECK(query.get_all("scope[]") == std::vector<std::string>{"all"});
  CHECK(header(got[0], "X-DPT-AUTHORIZATION") == "prof-token-1");
  CHECK(path_of(got[1]) == "/base/request-status/req-1");
  CHECK(path_of(got[2]) == "/base/request-status/req-1");
  CHECK(got[3].body() == "id=req-1&nonce=" + http::url_encode(nonce));
  CHECK(header(got[3], "Authorization") == "Basic Y2lkLTE6czNjcmV0");
  CHECK(got[4].body() == "authorization_code=ac-1");
  CHECK(header(got[4], "Authorization") == "Basic Y2lkLTE6czNjcmV0");
}

TEST_CASE("authorization_grant_refuses_a_code_echoing_another_nonce") {
  fixture fx;
  grant_server server;
  server.code_nonce = "someone-elses-nonce";
  fx.http_server.respond = server;
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    client_credentials creds{"cid-1", secret{"s3cret"}};
    std::vector<std::string> scopes{"all"};  // a braced list here trips GCC 12 in coroutines
    auto r = co_await run_authorization_grant(api, nullptr, creds, profile, scopes,
                                              steady_clock::now() + 3s, fast_flow());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);
    CHECK(r.error().message.find("nonce") != std::string::npos);
  });
  CHECK(fx.http_server.requests.size() == 4);  // never exchanged
}

TEST_CASE("authorization_grant_rejected_request_is_an_error_with_the_reason") {
  fixture fx;
  grant_server server;
  server.pending_polls = 0;
  server.final_status = R"({"command_status":3,"body":"profile.not_an_owner"})";
  fx.http_server.respond = server;
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    client_credentials creds{"cid-1", secret{"s3cret"}};
    std::vector<std::string> scopes{"all"};  // a braced list here trips GCC 12 in coroutines
    auto r = co_await run_authorization_grant(api, nullptr, creds, profile, scopes,
                                              steady_clock::now() + 3s, fast_flow());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::rejected);
    CHECK(r.error().message.find("profile.not_an_owner") != std::string::npos);
  });
}

TEST_CASE("register_and_configure_waits_for_the_command_then_retrieves_once") {
  fixture fx;
  fx.http_server.respond = [](const http::request& r) {
    auto path = path_of(r);
    if (path == "/base/profile/oauth-application-register")
      return json_answer(202, R"({"commandId":"app-1"})");
    if (path == "/base/request-status/app-1") return json_answer(200, R"("succeeded")");
    if (path == "/base/profile/retrieve-oauth-application-configuration")
      return json_answer(200, R"({"applicationId":"app-1","clientId":"cid","clientSecret":"cs"})");
    return json_answer(404, "");
  };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client();
    std::vector<std::string> scopes{"data-token:read"};
    auto r = co_await register_and_configure(api, nullptr, profile, "App", "https://x/cb", scopes,
                                             steady_clock::now() + 3s, fast_flow());
    REQUIRE(r.has_value());
    CHECK(r->application_id == "app-1");
    CHECK(r->client_secret.reveal() == "cs");
  });
  auto& got = fx.http_server.requests;
  REQUIRE(got.size() == 3);
  CHECK(got[0].body() == "name=App&redirectUri=https%3A%2F%2Fx%2Fcb&scopes=data-token%3Aread");
  CHECK(got[2].body() == "applicationId=app-1");
}
