// Credentials of several replicas behind one shared store (what etcd gives a cluster): one
// refresh per token lifetime across the replicas, never a replaced refresh token presented, no
// refresh without the lock, and tokens adopted from the replica that refreshed.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <map>
#include <set>

#include "broker/credential.hpp"

using namespace tokenbroker;
using namespace tokenbroker::broker;
using namespace std::chrono_literals;

namespace {

// The provider side: rotating refresh tokens, and a record of every replaced one presented.
struct issuer {
  int refreshes = 0, grants = 0, reuses = 0;
  std::string current_refresh;
  std::set<std::string> replaced;
  std::chrono::seconds lifetime{3600};

  token_bundle issue(const std::string& tag) {
    if (!current_refresh.empty()) replaced.insert(current_refresh);
    current_refresh = "refresh-" + tag;
    token_bundle b;
    b.access_token = secret{"access-" + tag};
    b.refresh_token = secret{current_refresh};
    b.obtained_at = std::chrono::floor<std::chrono::seconds>(system_clock::now());
    b.expires_at = b.obtained_at + lifetime;
    return b;
  }
};

struct replica_provider final : provider {
  net::any_io_executor ex;
  issuer& iss;
  std::function<void()> during_refresh;  // runs while the call is in flight
  replica_provider(net::any_io_executor e, issuer& i) : ex(std::move(e)), iss(i) {}

  awaitable<void> delay() {
    net::steady_timer t(ex, 20ms);
    co_await t.async_wait(use_tuple);
  }
  awaitable<result<std::optional<token_bundle>>> refresh(const token_bundle& current) override {
    ++iss.refreshes;
    if (iss.replaced.count(current.refresh_token.reveal())) ++iss.reuses;
    if (during_refresh) during_refresh();
    co_await delay();
    co_return std::optional<token_bundle>{iss.issue("r" + std::to_string(iss.refreshes))};
  }
  awaitable<result<token_bundle>> grant() override {
    ++iss.grants;
    co_await delay();
    co_return iss.issue("g" + std::to_string(iss.grants));
  }
  bool can_grant() const override { return true; }
  awaitable<result<token_bundle>> login(const login_input&) override {
    co_return make_error(errc::invalid_argument, "no login here");
  }
};

// What etcd holds for the replicas: records, one lock, and whether it can be reached.
struct fake_cluster {
  std::map<std::string, token_bundle> records;
  std::string lock_holder;  // "" when free
  bool up = true;
  int saves_refused = 0;
  std::vector<std::pair<std::string, store::update_handler>> watchers;  // replica, handler
  net::any_io_executor ex;

  // Delivers a saved record to every other replica, asynchronously like a watch.
  void announce(const std::string& writer, const std::string& name, const token_bundle& b) {
    for (auto& [replica, handler] : watchers)
      if (replica != writer) net::post(ex, [h = handler, name, b] { h(name, b); });
  }
};

struct shared_store final : store::state_store {
  fake_cluster& c;
  std::string me;
  shared_store(fake_cluster& cl, std::string name) : c(cl), me(std::move(name)) {}

  awaitable<result<std::optional<token_bundle>>> load(const std::string& name) override {
    if (!c.up) co_return make_error(errc::unavailable, "etcd down");
    auto it = c.records.find(name);
    if (it == c.records.end()) co_return std::optional<token_bundle>{};
    co_return std::optional<token_bundle>{it->second};
  }
  awaitable<result<void>> save(const std::string& name, const token_bundle& b) override {
    if (!c.up) co_return make_error(errc::unavailable, "etcd down");
    if (c.lock_holder != me) {
      ++c.saves_refused;
      co_return make_error(errc::refused, "lost the lock");
    }
    c.records[name] = b;
    c.announce(me, name, b);
    co_return result<void>{};
  }
  awaitable<result<void>> erase(const std::string& name) override {
    c.records.erase(name);
    co_return result<void>{};
  }
  bool shared() const noexcept override { return true; }
  awaitable<result<store::lock_state>> lock(const std::string&) override {
    if (!c.up) co_return make_error(errc::unavailable, "etcd down");
    if (!c.lock_holder.empty() && c.lock_holder != me) co_return store::lock_state::busy;
    c.lock_holder = me;
    co_return store::lock_state::acquired;
  }
  awaitable<void> unlock(const std::string&) override {
    if (c.lock_holder == me) c.lock_holder.clear();
    co_return;
  }
  void subscribe(store::update_handler h) override { c.watchers.emplace_back(me, std::move(h)); }
};

struct replica {
  std::unique_ptr<shared_store> store;
  replica_provider* provider = nullptr;
  std::unique_ptr<credential> cred;
};

struct cluster_harness {
  net::io_context io;
  metrics::registry metrics;
  issuer iss;
  fake_cluster etcd;
  std::vector<replica> replicas;

  explicit cluster_harness(int n, std::chrono::seconds lifetime = 3600s) {
    iss.lifetime = lifetime;
    etcd.ex = io.get_executor();
    for (int i = 0; i < n; ++i) {
      replica r;
      r.store = std::make_unique<shared_store>(etcd, "replica-" + std::to_string(i));
      auto p = std::make_unique<replica_provider>(io.get_executor(), iss);
      r.provider = p.get();
      credential_options o;
      o.name = "shared";
      o.provider_name = "fake";
      o.lock_poll = 50ms;
      r.cred = std::make_unique<credential>(io.get_executor(), o, std::move(p), *r.store, metrics,
                                            100 + static_cast<std::uint64_t>(i));
      auto* c = r.cred.get();
      r.store->subscribe([c](const std::string&, const token_bundle& b) { c->adopt_shared(b); });
      replicas.push_back(std::move(r));
    }
  }
  credential& cred(int i) { return *replicas[static_cast<std::size_t>(i)].cred; }

  template <class F>
  void run(F task) {
    for (auto& r : replicas) r.cred->start();
    net::co_spawn(io, [&]() -> awaitable<void> {
      co_await task();
      for (auto& r : replicas) r.cred->stop();
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    io.run();
  }
};

double handovers(const metrics::registry& m) {
  auto text = m.render();
  auto at = text.find("tokenbroker_cluster_lock_handovers_total{");
  if (at == std::string::npos) return 0;
  auto line_end = text.find('\n', at);
  auto space = text.rfind(' ', line_end);
  return std::stod(text.substr(space + 1, line_end - space - 1));
}

awaitable<void> pause(std::chrono::milliseconds d) {
  net::steady_timer t(co_await net::this_coro::executor, d);
  co_await t.async_wait(use_tuple);
}

// Starts `task` now (co_spawn with use_awaitable would start it only when awaited).
template <class T>
std::shared_ptr<std::optional<T>> launch(net::any_io_executor ex, awaitable<T> task) {
  auto out = std::make_shared<std::optional<T>>();
  net::co_spawn(ex, std::move(task), [out](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    *out = std::move(v);
  });
  return out;
}

// Waits until `done` holds, polling; false after `bound`.
template <class Pred>
awaitable<bool> eventually(Pred done, std::chrono::milliseconds bound = 5000ms) {
  auto until = steady_clock::now() + bound;
  while (!done()) {
    if (steady_clock::now() > until) co_return false;
    co_await pause(5ms);
  }
  co_return true;
}

}  // namespace

TEST_CASE("three_replicas_grant_once_and_refresh_about_once_per_cycle_without_reuse") {
  // 4 s tokens: one replica alone refreshes about every 2 s (half-life), so 8 s of traffic
  // cost about 4 refreshes. Three replicas without coordination would cost about 12.
  cluster_harness h(3, 4s);
  int served = 0, expired_served = 0;
  h.run([&]() -> awaitable<void> {
    auto until = steady_clock::now() + 8s;
    while (steady_clock::now() < until) {
      for (int i = 0; i < 3; ++i) {
        auto t = co_await h.cred(i).get_token(0s, 3s);
        REQUIRE(t.has_value());
        ++served;
        if (t->expires_at <= system_clock::now()) ++expired_served;
      }
      co_await pause(20ms);
    }
  });
  CHECK(served > 300);
  CHECK(expired_served == 0);
  CHECK(h.iss.grants == 1);
  CHECK(h.iss.reuses == 0);
  CHECK(h.iss.refreshes >= 2);
  CHECK(h.iss.refreshes <= 7);
  int holders = 0;
  for (int i = 0; i < 3; ++i) holders += h.cred(i).status().cluster_role == "holder" ? 1 : 0;
  CHECK(holders == 1);
  // The replica that granted keeps refreshing; the followers wait for its tokens instead of
  // taking turns (each turn would be a hand-over).
  CHECK(handovers(h.metrics) == 1);
}

TEST_CASE("simultaneous_forced_refreshes_on_every_replica_cost_one_refresh") {
  cluster_harness h(3);
  h.run([&]() -> awaitable<void> {
    for (int i = 0; i < 3; ++i) REQUIRE((co_await h.cred(i).get_token(0s, 5s)).has_value());
    auto ex = co_await net::this_coro::executor;
    std::vector<std::shared_ptr<std::optional<result<void>>>> forced;
    for (int i = 0; i < 3; ++i) forced.push_back(launch(ex, h.cred(i).force_refresh(5s)));
    REQUIRE(co_await eventually([&] {
      return std::all_of(forced.begin(), forced.end(), [](auto& f) { return f->has_value(); });
    }));
    for (auto& f : forced) CHECK((*f)->has_value());
    auto t0 = co_await h.cred(0).get_token(0s, 1s);
    auto t2 = co_await h.cred(2).get_token(0s, 1s);
    REQUIRE(t0.has_value());
    REQUIRE(t2.has_value());
    CHECK(t0->access_token == t2->access_token);
  });
  CHECK(h.iss.grants == 1);
  CHECK(h.iss.refreshes == 1);
  CHECK(h.iss.reuses == 0);
}

TEST_CASE("a_follower_never_refreshes_while_another_replica_holds_the_lock") {
  cluster_harness h(1, 2s);
  h.etcd.lock_holder = "elsewhere";
  h.run([&]() -> awaitable<void> {
    // No token anywhere yet: the caller waits for the replica that holds the lock...
    auto waiting = launch(co_await net::this_coro::executor, h.cred(0).get_token(0s, 5s));
    co_await pause(300ms);
    CHECK_FALSE(waiting->has_value());
    CHECK(h.cred(0).status().state == cred_state::refreshing);
    // ...which saves a token: it is adopted and served.
    auto b = h.iss.issue("remote");
    h.etcd.records["shared"] = b;
    h.etcd.announce("elsewhere", "shared", b);
    REQUIRE(co_await eventually([&] { return waiting->has_value(); }));
    auto& t = **waiting;
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-remote");
    CHECK(h.cred(0).status().cluster_role == "follower");
  });
  CHECK(h.iss.grants == 0);
  CHECK(h.iss.refreshes == 0);
}

TEST_CASE("newer_shared_tokens_found_under_the_lock_are_adopted_instead_of_refreshing") {
  cluster_harness h(1);
  h.run([&]() -> awaitable<void> {
    auto first = co_await h.cred(0).get_token(0s, 5s);
    REQUIRE(first.has_value());
    REQUIRE(h.iss.grants == 1);
    // Another replica refreshed, but its watch event never reached this one.
    h.etcd.records["shared"] = h.iss.issue("elsewhere");
    REQUIRE((co_await h.cred(0).force_refresh(5s)).has_value());
    auto t = co_await h.cred(0).get_token(0s, 5s);
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-elsewhere");
    // The next refresh presents the adopted refresh token, not the replaced one.
    REQUIRE((co_await h.cred(0).force_refresh(5s)).has_value());
  });
  CHECK(h.iss.refreshes == 1);
  CHECK(h.iss.reuses == 0);
}

TEST_CASE("without_etcd_valid_tokens_are_served_and_nothing_is_refreshed_until_it_returns") {
  cluster_harness h(1, 2s);
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred(0).get_token(0s, 5s)).has_value());
    h.etcd.up = false;
    auto forced = co_await h.cred(0).force_refresh(2s);
    CHECK_FALSE(forced.has_value());
    // Served while valid, refused once expired: never an expired token.
    for (;;) {
      auto t = co_await h.cred(0).get_token(0s, 100ms);
      if (!t) {
        CHECK(t.error().code == errc::unavailable);
        break;
      }
      CHECK(t->expires_at > system_clock::now());
      co_await pause(50ms);
    }
    CHECK(h.iss.refreshes == 0);
    h.etcd.up = true;
    auto back = co_await h.cred(0).get_token(0s, 10s);
    REQUIRE(back.has_value());
  });
  CHECK(h.iss.reuses == 0);
  CHECK(h.iss.refreshes + h.iss.grants >= 2);
}

TEST_CASE("a_replica_that_lost_its_lock_does_not_overwrite_the_new_holders_tokens") {
  cluster_harness h(1);
  h.run([&]() -> awaitable<void> {
    REQUIRE((co_await h.cred(0).get_token(0s, 5s)).has_value());
    auto before = h.etcd.records.at("shared");
    // While the refresh is in flight the lease expires and another replica takes the lock.
    h.replicas[0].provider->during_refresh = [&] { h.etcd.lock_holder = "elsewhere"; };
    auto r = co_await h.cred(0).force_refresh(5s);
    (void)r;
    CHECK(h.etcd.saves_refused == 1);
    CHECK(h.etcd.records.at("shared").access_token == before.access_token);
    // The new holder's tokens, when saved, are adopted.
    auto b = h.iss.issue("new-holder");
    h.etcd.records["shared"] = b;
    h.etcd.announce("elsewhere", "shared", b);
    co_await pause(50ms);
    auto t = co_await h.cred(0).get_token(0s, 1s);
    REQUIRE(t.has_value());
    CHECK(t->access_token.reveal() == "access-new-holder");
  });
}
