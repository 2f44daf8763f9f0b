// The WebSocket acknowledgement channel and wait_for_command against in-process servers.
#include "privicore/ack_channel.hpp"

#include <doctest/doctest.h>

#include "core/spawn.hpp"
#include "fakes.hpp"
#include "privicore/command_waiter.hpp"

using namespace tokenbroker;
using namespace tokenbroker::privicore;
using namespace tokenbroker::privicore::test;

namespace {

const secret profile{"prof-token-1"};

steady_clock::time_point in(std::chrono::milliseconds d) { return steady_clock::now() + d; }

// Background steps, as free coroutines so that nothing they use dies with a temporary lambda.
awaitable<void> send_ack_later(ws_peer* peer, std::string id, int status) {
  co_await yield_once();
  co_await peer->send_ack(std::move(id), status);
}

// One writer at a time on a WebSocket: both acks from one coroutine.
awaitable<void> send_pending_then_final_later(ws_peer* peer, std::string id) {
  co_await yield_once();
  co_await peer->send_ack(id, 1);
  co_await peer->send_ack(id, 2);
}

awaitable<void> drop_later(ws_peer* peer) {
  co_await yield_once();
  peer->drop();
}

awaitable<void> stop_later(ack_channel* channel) {
  co_await yield_once();
  channel->stop();
}

}  // namespace

// --- the channel ------------------------------------------------------------------------------

TEST_CASE("channel_joins_with_the_token_and_a_correlation_id_in_data_and_at_top_level") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  CHECK_FALSE(ch.joined());
  CHECK(ch.generation() == 0);
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    auto join = co_await peer->accept_join("chn-7");
    CHECK(join["action"] == "joinChannel");
    CHECK(join["data"]["authorizationToken"] == "pt-1");
    auto correlation = join["data"]["correlationId"].get<std::string>();
    CHECK(correlation.size() == 32);
    CHECK(join["correlationId"] == correlation);
    auto joined = co_await ch.ensure_joined(in(2s));
    CHECK(joined.has_value());
    CHECK(ch.joined());
    CHECK(ch.generation() == 1);
  });
}

TEST_CASE("ack_that_arrives_before_wait_is_called_is_not_missed") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    co_await peer->send_ack("cmd-x", 2, "done");
    co_await peer->send_ack("cmd-y", 3, "profile.not_an_owner");
    auto y = co_await ch.wait("cmd-y", in(2s));  // sent after cmd-x on the same socket
    REQUIRE(y.has_value());
    CHECK(y->state == command_state::rejected);
    CHECK(y->body == "profile.not_an_owner");
    auto x = co_await ch.wait("cmd-x", steady_clock::now());  // deadline already reached
    REQUIRE(x.has_value());
    CHECK(x->state == command_state::succeeded);
    CHECK(x->body == "done");
  });
}

TEST_CASE("pending_status_1_is_skipped_and_the_final_ack_wakes_the_waiter") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    co_await peer->send_ack("cmd-p", 1, "Pending");
    co_await peer->send_ack("cmd-s", 2);
    auto s = co_await ch.wait("cmd-s", in(2s));
    REQUIRE(s.has_value());
    CHECK(s->body.empty());  // a null body
    CHECK_FALSE(ch.acknowledged("cmd-p").has_value());

    spawn_logged(co_await net::this_coro::executor, "acks",
                 send_pending_then_final_later(peer.get(), "cmd-p"));
    auto p = co_await ch.wait("cmd-p", in(2s));
    REQUIRE(p.has_value());
    CHECK(p->state == command_state::succeeded);
  });
}

TEST_CASE("channel_reconnects_and_rejoins_after_the_server_drops_the_socket") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto first = co_await fx.ws_server.accept();
    co_await first->accept_join("chn-1");
    co_await first->send_ack("before", 2);
    auto before = co_await ch.wait("before", in(2s));
    REQUIRE(before.has_value());
    CHECK(ch.generation() == 1);
    first->drop();

    auto second = co_await fx.ws_server.accept();
    auto join = co_await second->accept_join("chn-2");
    CHECK(join["data"]["authorizationToken"] == "pt-1");
    co_await second->send_ack("after", 2);
    auto after = co_await ch.wait("after", in(2s));
    REQUIRE(after.has_value());
    CHECK(ch.joined());
    CHECK(ch.generation() == 2);
    CHECK(ch.acknowledged("before").has_value());  // the buffer outlives the connection
  });
}

TEST_CASE("set_token_rejoins_on_a_fresh_connection_with_the_new_token") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto first = co_await fx.ws_server.accept();
    co_await first->accept_join();
    auto first_join = co_await ch.ensure_joined(in(2s));
    REQUIRE(first_join.has_value());
    ch.set_token(secret{"pt-2"});
    auto second = co_await fx.ws_server.accept();
    auto join = co_await second->accept_join();
    CHECK(join["data"]["authorizationToken"] == "pt-2");
    auto joined = co_await ch.ensure_joined(in(2s));
    CHECK(joined.has_value());
    CHECK(ch.generation() == 2);
    auto old = co_await first->read();
    CHECK(old.empty());  // the old connection was closed
  });
}

TEST_CASE("refused_join_is_retried_and_ensure_joined_times_out_with_the_reason") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-bad"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->read();
    co_await peer->send(R"({"status":401,"data":{"message":"invalid token pt-bad"}})");
    auto r = co_await ch.ensure_joined(in(300ms));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::timeout);
    CHECK(r.error().message.find("refused the join (status 401)") != std::string::npos);
    CHECK(r.error().message.find("pt-bad") == std::string::npos);
    CHECK_FALSE(ch.joined());
  });
}

TEST_CASE("wait_returns_nothing_at_its_deadline_without_an_ack") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    auto joined = co_await ch.ensure_joined(in(2s));  // else the join itself wakes the wait
    REQUIRE(joined.has_value());
    auto start = steady_clock::now();
    auto r = co_await ch.wait("never", in(50ms));
    CHECK_FALSE(r.has_value());
    CHECK(steady_clock::now() - start >= 50ms);
    CHECK(steady_clock::now() - start < 1s);
  });
}

TEST_CASE("stop_wakes_waiters_at_once_and_refuses_further_joins") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    auto first_join = co_await ch.ensure_joined(in(2s));
    REQUIRE(first_join.has_value());
    spawn_logged(co_await net::this_coro::executor, "stop", stop_later(&ch));
    auto start = steady_clock::now();
    auto r = co_await ch.wait("never", in(3s));
    CHECK_FALSE(r.has_value());
    CHECK(steady_clock::now() - start < 1s);
    CHECK_FALSE(ch.joined());
    auto again = co_await ch.ensure_joined(in(1s));
    CHECK(again.error().code == errc::unavailable);
  });
}

TEST_CASE("channel_joins_over_wss_verifying_the_servers_certificate_and_host") {
  loopback_certificate cert;
  fixture fx;
  http::client_options trusting;
  trusting.ca_file = cert.ca_file;
  fx.tls_http.emplace(fx.ioc.get_executor(), trusting);
  auto& ch = fx.start_channel(secret{"pt-1"}, fast_channel(), &*fx.tls_http, true);
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept_tls(cert.server_context);
    REQUIRE(peer != nullptr);
    auto join = co_await peer->accept_join();
    CHECK(join["data"]["authorizationToken"] == "pt-1");
    co_await peer->send_ack("cmd-tls", 2);
    auto r = co_await ch.wait("cmd-tls", in(2s));
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::succeeded);
    CHECK(ch.generation() == 1);
  });
}

TEST_CASE("channel_refuses_a_wss_server_whose_certificate_is_not_trusted") {
  loopback_certificate cert;
  fixture fx;  // its client trusts the system store only
  auto& ch = fx.start_channel(secret{"pt-1"}, fast_channel(), nullptr, true);
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept_tls(cert.server_context);
    CHECK(peer == nullptr);
    auto r = co_await ch.ensure_joined(in(200ms));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::timeout);
    CHECK(r.error().message.find("tls: TLS handshake") != std::string::npos);
  });
}

// --- wait_for_command -----------------------------------------------------------------------

TEST_CASE("wait_for_command_polls_until_final_when_there_is_no_channel") {
  fixture fx;
  fx.http_server.respond = in_order({json_answer(200, R"("started")"),
                                     json_answer(200, R"("started")"),
                                     json_answer(200, R"("succeeded")")});
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(2s, status_method::get);
    auto r = co_await wait_for_command(api, nullptr, "cmd-1", &profile, in(2s), 5ms);
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::succeeded);
    CHECK(r->id == "cmd-1");
  });
  CHECK(fx.http_server.requests.size() == 3);
}

TEST_CASE("wait_for_command_polls_when_the_channel_is_not_joined") {
  fixture fx;
  fx.http_server.respond = in_order({json_answer(200, R"("succeeded")")});
  ack_channel idle(fx.http, fx.ws_server.url(), secret{"pt-1"}, fast_channel());  // never run
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(2s, status_method::get);
    auto r = co_await wait_for_command(api, &idle, "cmd-1", &profile, in(2s), 5ms);
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::succeeded);
  });
  CHECK(fx.http_server.requests.size() == 1);
}

TEST_CASE("wait_for_command_uses_the_channel_ack_without_polling") {
  fixture fx;
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    auto first_join = co_await ch.ensure_joined(in(2s));
    REQUIRE(first_join.has_value());
    auto generation = ch.generation();
    spawn_logged(co_await net::this_coro::executor, "ack", send_ack_later(peer.get(), "cmd-1", 3));
    auto api = fx.make_client();
    auto r = co_await wait_for_command(api, &ch, "cmd-1", &profile, in(2s), 5ms, generation);
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::rejected);
  });
  CHECK(fx.http_server.requests.empty());
}

TEST_CASE("wait_for_command_polls_when_the_channel_drops_while_waiting") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(200, R"("succeeded")"); };
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    auto first_join = co_await ch.ensure_joined(in(2s));
    REQUIRE(first_join.has_value());
    auto generation = ch.generation();
    spawn_logged(co_await net::this_coro::executor, "drop", drop_later(peer.get()));
    auto api = fx.make_client(2s, status_method::get);
    auto r = co_await wait_for_command(api, &ch, "cmd-1", &profile, in(2s), 5ms, generation);
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::succeeded);
  });
  CHECK(fx.http_server.requests.size() == 1);
}

TEST_CASE("wait_for_command_polls_once_when_the_join_is_newer_than_the_command") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(200, R"("started")"); };
  auto& ch = fx.start_channel(secret{"pt-1"});
  fx.run([&]() -> awaitable<void> {
    auto peer = co_await fx.ws_server.accept();
    co_await peer->accept_join();
    auto first_join = co_await ch.ensure_joined(in(2s));
    REQUIRE(first_join.has_value());
    spawn_logged(co_await net::this_coro::executor, "ack", send_ack_later(peer.get(), "cmd-1", 2));
    auto api = fx.make_client(2s, status_method::get);
    // sent_generation 0: the command's ack might predate this join, so one poll comes first.
    auto r = co_await wait_for_command(api, &ch, "cmd-1", &profile, in(2s), 5ms, 0);
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::succeeded);
  });
  CHECK(fx.http_server.requests.size() == 1);
}

TEST_CASE("wait_for_command_returns_a_rejection_as_a_value") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(200, R"("rejected")"); };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(2s, status_method::get);
    auto r = co_await wait_for_command(api, nullptr, "cmd-1", &profile, in(2s), 5ms);
    REQUIRE(r.has_value());
    CHECK(r->state == command_state::rejected);
    auto as_error = require_success(*r, "command cmd-1");
    CHECK(as_error.error().code == errc::rejected);
  });
}

TEST_CASE("wait_for_command_times_out_naming_the_last_poll") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(200, R"("started")"); };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(2s, status_method::get);
    auto r = co_await wait_for_command(api, nullptr, "cmd-1", &profile, in(60ms), 5ms);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::timeout);
    CHECK(r.error().message.find("still pending") != std::string::npos);
  });
}

TEST_CASE("wait_for_command_stops_at_once_when_the_status_endpoint_refuses_the_token") {
  fixture fx;
  fx.http_server.respond = [](const http::request&) { return json_answer(401, ""); };
  fx.run([&]() -> awaitable<void> {
    auto api = fx.make_client(2s, status_method::get);
    auto r = co_await wait_for_command(api, nullptr, "cmd-1", &profile, in(2s), 5ms);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().status == 401);
  });
  CHECK(fx.http_server.requests.size() == 1);
}
