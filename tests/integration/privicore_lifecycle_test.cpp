// lib/privicore against privicore-sim: the whole Privicore lifecycle (PROTOCOL.md §6) through the
// typed client, once with WebSocket acks and once by polling, and the client's errors under faults.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include "core/spawn.hpp"
#include "privicore/ack_channel.hpp"
#include "privicore/client.hpp"
#include "privicore/command_waiter.hpp"
#include "privicore/grant.hpp"
#include "support/sim.hpp"

using namespace tokenbroker;
using namespace tokenbroker::privicore;
using namespace std::chrono_literals;
using tokenbroker::test::sim_fixture;

namespace {

// Runs `body` on a fresh io_context until it finishes; rethrows what it throws.
template <class F>
void run(F body) {
  net::io_context io;
  bool done = false;
  net::co_spawn(io, [&]() -> awaitable<void> {
    co_await body();
    done = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();
  REQUIRE(done);
}

steady_clock::time_point in(std::chrono::milliseconds d) { return steady_clock::now() + d; }

awaitable<void> lifecycle(const sim_fixture& sim, bool websocket) {
  auto ex = co_await net::this_coro::executor;
  http::client http(ex, http::client_options{});
  client api(http, http::url::parse(sim.url()).value(), 5s);

  REQUIRE((co_await api.health()).has_value());
  secret password{"owner-password"};
  auto session = co_await api.authenticate("owner", password);
  REQUIRE(session.has_value());
  auto expiry = co_await api.token_expiry(session->token);
  REQUIRE(expiry.has_value());
  CHECK(*expiry == session->expires_at);

  std::shared_ptr<ack_channel> channel;
  if (websocket) {
    channel = std::make_shared<ack_channel>(http, http::url::parse(sim.ws_url()).value(),
                                            session->token);
    spawn_logged(ex, "acks", [channel]() -> awaitable<void> { co_await channel->run(); });
    REQUIRE((co_await channel->ensure_joined(in(5s))).has_value());
  }

  // Register an application, wait for the ack, retrieve its configuration exactly once.
  std::vector<std::string> scopes{"all"};
  auto app_id = co_await api.register_application(session->token, "lifecycle", "https://app/cb", scopes);
  REQUIRE(app_id.has_value());
  auto registered = co_await wait_for_command(api, channel.get(), *app_id, &session->token, in(5s));
  REQUIRE(registered.has_value());
  CHECK(registered->state == command_state::succeeded);
  auto config = co_await api.retrieve_configuration(session->token, *app_id);
  REQUIRE(config.has_value());
  CHECK_FALSE(config->client_secret.empty());
  auto again = co_await api.retrieve_configuration(session->token, *app_id);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().status == 422);
  CHECK(again.error().message.find("already") != std::string::npos);
  CHECK(again.error().message.find(config->client_secret.reveal()) == std::string::npos);
  client_credentials creds{config->client_id, config->client_secret};

  // Request a code, wait for the ack, retrieve it: wrong nonce refused, then right, then reuse refused.
  std::string nonce = "nonce-" + std::to_string(websocket);
  auto request_id = co_await api.request_authorization_code(session->token, creds.client_id, nonce, scopes);
  REQUIRE(request_id.has_value());
  auto acked = co_await wait_for_command(api, channel.get(), *request_id, &session->token, in(5s));
  REQUIRE(acked.has_value());
  CHECK(acked->state == command_state::succeeded);
  auto wrong = co_await api.retrieve_authorization_code(creds, *request_id, "not-the-nonce");
  REQUIRE_FALSE(wrong.has_value());
  CHECK(wrong.error().status == 422);
  auto code = co_await api.retrieve_authorization_code(creds, *request_id, nonce);
  REQUIRE(code.has_value());
  auto reused = co_await api.retrieve_authorization_code(creds, *request_id, nonce);
  REQUIRE_FALSE(reused.has_value());
  CHECK(reused.error().code == errc::http_status);

  // Obtain the tokens; the code is single use.
  auto tokens = co_await api.obtain_access_token(creds, code->code);
  REQUIRE(tokens.has_value());
  CHECK(tokens->type == "bearer");
  CHECK(tokens->refresh_expires_at.has_value());
  auto second = co_await api.obtain_access_token(creds, code->code);
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().status == 401);

  // Refresh, answered 200 with new tokens; the replaced refresh token is then refused.
  auto refreshed = co_await api.refresh_access_token(tokens->access_token, tokens->refresh_token);
  REQUIRE(refreshed.has_value());
  REQUIRE(refreshed->tokens.has_value());
  CHECK_FALSE(refreshed->tokens->access_token == tokens->access_token);
  auto stale = co_await api.refresh_access_token(refreshed->tokens->access_token, tokens->refresh_token);
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.error().status == 401);

  // Refresh answered 202 without a body: accepted, and no token is invented.
  sim.config({{"refresh_mode", "202"}});
  auto accepted = co_await api.refresh_access_token(refreshed->tokens->access_token,
                                                    refreshed->tokens->refresh_token);
  REQUIRE(accepted.has_value());
  CHECK_FALSE(accepted->tokens.has_value());
  sim.config({{"refresh_mode", "200"}});

  // A second grant through the one-call flow.
  auto granted = co_await run_authorization_grant(api, channel.get(), creds, session->token,
                                                  scopes, in(10s));
  REQUIRE(granted.has_value());

  // Revoked and expired tokens are refused with 401.
  REQUIRE((co_await api.revoke(session->token)).has_value());
  auto after_revoke = co_await api.token_expiry(session->token);
  REQUIRE_FALSE(after_revoke.has_value());
  CHECK(after_revoke.error().status == 401);
  sim.expire(granted->refresh_token.reveal());
  auto expired = co_await api.refresh_access_token(granted->access_token, granted->refresh_token);
  REQUIRE_FALSE(expired.has_value());
  CHECK(expired.error().status == 401);
  if (channel) channel->stop();
}

}  // namespace

TEST_CASE("the_whole_lifecycle_with_websocket_acks") {
  sim_fixture sim({"--profile", "owner:owner-password", "--ack-before-response"});
  run([&]() { return lifecycle(sim, true); });
}

TEST_CASE("the_whole_lifecycle_by_polling_with_post_status_and_object_ids") {
  sim_fixture sim({"--profile", "owner:owner-password", "--status-method", "post",
                   "--command-id-shape", "object", "--status-shape", "array"});
  run([&]() { return lifecycle(sim, false); });
}

TEST_CASE("each_fault_reaches_the_caller_as_a_precise_error") {
  sim_fixture sim({"--profile", "owner:owner-password"});
  run([&]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    http::client http(ex, http::client_options{});
    client api(http, http::url::parse(sim.url()).value(), 1500ms);
    secret pw{"owner-password"};
    auto fault = [&](nlohmann::json f) {
      f["path"] = "/profile/authenticate";
      f["count"] = 1;
      sim.fault(f);
    };

    fault({{"kind", "status"}, {"status", 503}});
    auto r = co_await api.authenticate("owner", pw);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::http_status);
    CHECK(r.error().status == 503);

    fault({{"kind", "retry_after"}, {"status", 429}, {"retry_after", 7}});
    r = co_await api.authenticate("owner", pw);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 429);
    CHECK(r.error().retry_after == 7s);

    fault({{"kind", "hang"}});
    r = co_await api.authenticate("owner", pw);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::timeout);

    fault({{"kind", "reset"}});
    r = co_await api.authenticate("owner", pw);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::transport);

    fault({{"kind", "malformed"}});
    r = co_await api.authenticate("owner", pw);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);

    fault({{"kind", "slow_body"}, {"interval_ms", 400}});
    r = co_await api.authenticate("owner", pw);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::timeout);

    // The faults are spent: the next call succeeds, and no error named the password.
    r = co_await api.authenticate("owner", pw);
    CHECK(r.has_value());
  });
}
