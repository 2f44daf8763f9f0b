#include "broker/credential.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

using namespace tokenbroker;
using namespace tokenbroker::broker;
using namespace std::chrono_literals;

namespace {

// A scripted token endpoint: each call pops the next answer (or issues a token by default) and
// completes after `latency` of real time, so concurrent callers overlap with the call in flight.
struct fake_provider final : provider {
  net::any_io_executor ex;
  int refreshes = 0, grants = 0, logins = 0;
  bool grantable = true;
  std::chrono::seconds lifetime{3600};
  std::chrono::milliseconds latency{20ms};
  std::vector<result<std::optional<token_bundle>>> refresh_script;
  std::vector<result<token_bundle>> grant_script;
  secret last_refresh_token_seen;
  std::string prefix;              // tells apart the tokens of two providers
  int* calls_in_flight = nullptr;  // shared by providers that replace one another
  int* most_in_flight = nullptr;

  explicit fake_provider(net::any_io_executor e) : ex(std::move(e)) {}

  token_bundle issue(const std::string& tag) {
    token_bundle b;
    b.access_token = secret{prefix + "access-" + tag};
    b.refresh_token = secret{prefix + "refresh-" + tag};
    b.obtained_at = std::chrono::floor<std::chrono::seconds>(system_clock::now());
    b.expires_at = b.obtained_at + lifetime;
    return b;
  }
  awaitable<void> delay() {
    if (calls_in_flight) *most_in_flight = std::max(*most_in_flight, ++*calls_in_flight);
    net::steady_timer t(ex, latency);
    co_await t.async_wait(use_tuple);
    if (calls_in_flight) --*calls_in_flight;
  }
  awaitable<result<std::optional<token_bundle>>> refresh(const token_bundle& current) override {
    ++refreshes;
    last_refresh_token_seen = current.refresh_token;
    co_await delay();
    if (!refresh_script.empty()) {
      auto r = refresh_script.front();
      refresh_script.erase(refresh_script.begin());
      co_return r;
    }
    co_return std::optional<token_bundle>{issue("r" + std::to_string(refreshes))};
  }
  awaitable<result<token_bundle>> grant() override {
    ++grants;
    co_await delay();
    if (!grant_script.empty()) {
      auto r = grant_script.front();
      grant_script.erase(grant_script.begin());
      co_return r;
    }
    co_return issue("g" + std::to_string(grants));
  }
  bool can_grant() const override { return grantable; }
  std::optional<token_bundle> seed_bundle;  // a configured refresh token
  std::optional<token_bundle> seed() const override { return seed_bundle; }
  awaitable<result<token_bundle>> login(const login_input&) override {
    ++logins;
    co_return issue("login");
  }
  // What the store held for the credential when login_adopted() was called.
  store::state_store* store = nullptr;
  std::optional<std::string> saved_when_adopted;
  awaitable<void> login_adopted() override {
    auto saved = co_await store->load("test");
    saved_when_adopted = saved && *saved ? (*saved)->access_token.reveal() : "<nothing>";
  }
};

struct harness {
  net::io_context io;
  metrics::registry metrics;
  store::memory_store store;
  fake_provider* fake = nullptr;
  std::unique_ptr<credential> cred;

  harness(bool grantable = true) {
    auto p = std::make_unique<fake_provider>(io.get_executor());
    p->grantable = grantable;
    p->store = &store;
    fake = p.get();
    credential_options o;
    o.name = "test";
    o.provider_name = "fake";
    cred = std::make_unique<credential>(io.get_executor(), o, std::move(p), store, metrics, 1);
  }

  // Runs `task` to completion on the io_context, then stops the credential.
  template <class F>
  void run(F task) {
    cred->start();
    net::co_spawn(io, [&]() -> awaitable<void> {
      co_await task();
      cred->stop();
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    io.run();
  }
};

}  // namespace

TEST_CASE("concurrent_callers_without_a_token_cause_exactly_one_grant") {
  harness h;
  int ok = 0, failed = 0;
  h.run([&]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    int done = 0;
    net::steady_timer all_done(ex, steady_clock::time_point::max());
    for (int i = 0; i < 500; ++i) {
      net::co_spawn(ex, [&]() -> awaitable<void> {
        auto r = co_await h.cred->get_token(0s, 5s);
        (r ? ok : failed)++;
        if (++done == 500) all_done.cancel();
      }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    }
    co_await all_done.async_wait(use_tuple);
  });
  CHECK(ok == 500);
  CHECK(failed == 0);
  CHECK(h.fake->grants == 1);
  CHECK(h.fake->refreshes == 0);
}

TEST_CASE("forced_refreshes_are_coalesced_and_use_the_refresh_token") {
  harness h;
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred->get_token(0s, 5s)).has_value());
    auto ex = co_await net::this_coro::executor;
    int done = 0;
    net::steady_timer all_done(ex, steady_clock::time_point::max());
    for (int i = 0; i < 50; ++i) {
      net::co_spawn(ex, [&]() -> awaitable<void> {
        auto r = co_await h.cred->force_refresh(5s);
        CHECK(r.has_value());
        if (++done == 50) all_done.cancel();
      }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    }
    co_await all_done.async_wait(use_tuple);
    auto t = co_await h.cred->get_token(0s, 1s);
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-r1");
  });
  CHECK(h.fake->refreshes == 1);
  CHECK(h.fake->last_refresh_token_seen.reveal() == "refresh-g1");
}

TEST_CASE("a_refresh_without_a_new_refresh_token_keeps_the_old_one") {
  harness h;
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred->get_token(0s, 5s)).has_value());
    auto b = h.fake->issue("x");
    b.refresh_token = secret{};
    h.fake->refresh_script.push_back(std::optional<token_bundle>{b});
    REQUIRE((co_await h.cred->force_refresh(5s)).has_value());
    REQUIRE((co_await h.cred->force_refresh(5s)).has_value());
  });
  CHECK(h.fake->refreshes == 2);
  CHECK(h.fake->last_refresh_token_seen.reveal() == "refresh-g1");
}

TEST_CASE("a_refused_refresh_token_leads_to_a_regrant_when_a_login_is_held") {
  harness h;
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred->get_token(0s, 5s)).has_value());
    h.fake->refresh_script.push_back(make_http_error(401, "refresh token revoked"));
    auto refused = co_await h.cred->force_refresh(5s);
    CHECK_FALSE(refused.has_value());
    // The old access token stays valid and is served while the re-grant runs; joining the
    // re-grant (force_refresh coalesces with the attempt in flight) yields the new grant's token.
    REQUIRE((co_await h.cred->force_refresh(5s)).has_value());
    auto t = co_await h.cred->get_token(0s, 5s);
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-g2");
  });
  CHECK(h.fake->grants == 2);
}

TEST_CASE("a_refused_refresh_token_without_a_login_means_needs_grant_and_valid_token_still_served") {
  harness h(false);
  h.run([&]() -> awaitable<void> {
    login_input input;  // named: GCC 12 mishandles non-trivial temporaries inside co_await
    REQUIRE((co_await h.cred->login(input)).has_value());
    h.fake->refresh_script.push_back(make_http_error(401, "refresh token revoked"));
    auto f = co_await h.cred->force_refresh(5s);
    CHECK_FALSE(f.has_value());
    CHECK(h.cred->status().state == cred_state::needs_grant);
    auto t = co_await h.cred->get_token(0s, 1s);  // still valid: still served
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-login");
  });
  CHECK(h.fake->refreshes == 1);
}

TEST_CASE("without_any_grant_callers_get_unavailable_at_once") {
  harness h(false);
  h.run([&]() -> awaitable<void> {
    auto t0 = steady_clock::now();
    auto r = co_await h.cred->get_token(0s, 10s);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::unavailable);
    CHECK(r.error().message.find("tokenbrokerctl login test") != std::string::npos);
    CHECK(steady_clock::now() - t0 < 5s);  // did not sit out the wait bound
    CHECK(h.cred->status().state == cred_state::needs_grant);
  });
}

TEST_CASE("transient_failures_back_off_and_report_retry_after") {
  harness h;
  h.fake->grant_script.push_back(make_http_error(503, "down", 7s));
  h.run([&]() -> awaitable<void> {
    auto r = co_await h.cred->get_token(0s, 2s);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::unavailable);
    CHECK(r.error().retry_after >= 6s);
    CHECK(h.cred->status().state == cred_state::expired);
    CHECK(h.cred->status().last_error.find("503") != std::string::npos);
  });
  CHECK(h.fake->grants == 1);
}

TEST_CASE("a_rejected_request_is_an_error_state_not_a_retry_loop") {
  harness h;
  h.fake->grant_script.push_back(make_http_error(422, "invalid parameters"));
  h.run([&]() -> awaitable<void> {
    auto r = co_await h.cred->get_token(0s, 2s);
    REQUIRE_FALSE(r.has_value());
    CHECK(h.cred->status().state == cred_state::error);
    auto again = co_await h.cred->get_token(0s, 1s);
    CHECK_FALSE(again.has_value());
  });
  CHECK(h.fake->grants == 1);
}

TEST_CASE("an_invalidated_token_is_not_served_and_is_replaced") {
  harness h;
  h.run([&]() -> awaitable<void> {
    auto first = co_await h.cred->get_token(0s, 5s);
    REQUIRE(first.has_value());
    h.cred->invalidate(first->access_token);
    h.cred->invalidate(first->access_token);  // idempotent
    auto second = co_await h.cred->get_token(0s, 5s);
    REQUIRE(second.has_value());
    CHECK_FALSE(second->access_token == first->access_token);
  });
  CHECK(h.fake->refreshes == 1);
}

TEST_CASE("min_valid_longer_than_the_token_lifetime_is_refused") {
  harness h;
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred->get_token(0s, 5s)).has_value());
    auto r = co_await h.cred->get_token(7200s, 1s);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::invalid_argument);
  });
}

TEST_CASE("a_provider_swapped_during_a_refresh_takes_over_after_it_and_the_token_is_kept") {
  harness h;
  int in_flight = 0, most = 0;
  h.fake->calls_in_flight = &in_flight;
  h.fake->most_in_flight = &most;
  h.fake->latency = 200ms;
  auto next = std::make_shared<fake_provider>(h.io.get_executor());
  next->prefix = "new-";
  next->calls_in_flight = &in_flight;
  next->most_in_flight = &most;
  std::shared_ptr<provider> old;
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred->get_token(0s, 5s)).has_value());
    auto ex = co_await net::this_coro::executor;
    bool first_done = false;
    net::co_spawn(ex, [&]() -> awaitable<void> {
      CHECK((co_await h.cred->force_refresh(5s)).has_value());
      first_done = true;
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    net::steady_timer t(ex, 50ms);
    co_await t.async_wait(use_tuple);
    REQUIRE(h.fake->refreshes == 1);  // in flight on the old provider
    old = h.cred->shared_provider();  // kept to count its calls after the swap
    h.cred->reconfigure(schedule_policy{}, "fake", next, false);
    while (!first_done) {
      CHECK(h.cred->shared_provider() == old);  // not while the refresh is in flight
      t.expires_after(10ms);
      co_await t.async_wait(use_tuple);
    }
    CHECK(h.cred->shared_provider() == std::static_pointer_cast<provider>(next));
    auto kept = co_await h.cred->get_token(0s, 1s);
    REQUIRE(kept.has_value());
    CHECK(kept->access_token.reveal() == "access-r1");  // the old provider's refresh, kept
    CHECK((co_await h.cred->force_refresh(5s)).has_value());
    auto t2 = co_await h.cred->get_token(0s, 1s);
    REQUIRE(t2.has_value());
    CHECK(t2->access_token.reveal() == "new-access-r1");
  });
  CHECK(h.fake->refreshes == 1);
  CHECK(next->refreshes == 1);
  CHECK(next->last_refresh_token_seen.reveal() == "refresh-r1");  // no new grant
  CHECK(next->grants == 0);
  CHECK(most == 1);  // never two calls at once
}

TEST_CASE("a_new_grant_drops_the_tokens_and_the_saved_state_of_the_previous_one") {
  harness h;
  auto next = std::make_shared<fake_provider>(h.io.get_executor());
  next->prefix = "new-";
  std::shared_ptr<provider> old;
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred->get_token(0s, 5s)).has_value());
    old = h.cred->shared_provider();
    h.cred->reconfigure(schedule_policy{}, "fake", next, true);
    auto ex = co_await net::this_coro::executor;
    net::steady_timer t(ex);
    for (int i = 0; i < 200 && next->grants == 0; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(use_tuple);
    }
    auto tok = co_await h.cred->get_token(0s, 5s);
    REQUIRE(tok.has_value());
    CHECK(tok->access_token.reveal() == "new-access-g1");
    auto saved = co_await h.store.load("test");
    REQUIRE(saved.has_value());
    REQUIRE(saved->has_value());
    CHECK((*saved)->access_token.reveal() == "new-access-g1");
  });
  CHECK(h.fake->grants == 1);
  CHECK(next->grants == 1);
  CHECK(next->refreshes == 0);
}

TEST_CASE("a_configured_refresh_token_replaces_a_refused_one_on_reconfigure") {
  harness h(false);
  auto next = std::make_shared<fake_provider>(h.io.get_executor());
  next->grantable = false;
  next->prefix = "new-";
  next->seed_bundle.emplace();
  next->seed_bundle->refresh_token = secret{"configured-refresh"};
  std::shared_ptr<provider> old;
  h.run([&]() -> awaitable<void> {
    login_input input;  // named: GCC 12 mishandles non-trivial temporaries inside co_await
    REQUIRE((co_await h.cred->login(input)).has_value());
    h.fake->refresh_script.push_back(make_http_error(401, "refresh token revoked"));
    CHECK_FALSE((co_await h.cred->force_refresh(5s)).has_value());
    REQUIRE(h.cred->status().state == cred_state::needs_grant);
    old = h.cred->shared_provider();
    h.cred->reconfigure(schedule_policy{}, "fake", next, false);
    auto ex = co_await net::this_coro::executor;
    net::steady_timer t(ex);
    for (int i = 0; i < 200 && next->refreshes == 0; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(use_tuple);
    }
    REQUIRE((co_await h.cred->force_refresh(5s)).has_value());  // joins the one in flight
    auto tok = co_await h.cred->get_token(0s, 5s);
    REQUIRE(tok.has_value());
    CHECK(tok->access_token.reveal() == "new-access-r1");
    CHECK(h.cred->status().state == cred_state::fresh);
  });
  CHECK(next->refreshes == 1);
  CHECK(next->last_refresh_token_seen.reveal() == "configured-refresh");
}

TEST_CASE("a_login_is_saved_before_the_provider_may_drop_what_it_logged_in_with") {
  harness h(false);
  h.run([&]() -> awaitable<void> {
    login_input in;
    in.username = "alice";
    REQUIRE((co_await h.cred->login(in)).has_value());
    auto t = co_await h.cred->get_token(0s, 1s);
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-login");
  });
  CHECK(h.fake->logins == 1);
  REQUIRE(h.fake->saved_when_adopted.has_value());
  CHECK(*h.fake->saved_when_adopted == "access-login");
}
