// lib/cluster's etcd watch against a real etcd: every change under the prefix in order and
// exactly once, across an etcd restart, after compaction, over a second endpoint, over https
// with a client certificate, until stop().
#include <future>

#include "etcd_harness.hpp"
#include "support/tcp_relay.hpp"

using namespace tokenbroker;
using namespace tokenbroker::cluster;
using namespace std::chrono_literals;
using tokenbroker::test::etcd_fixture;
using tokenbroker::test::eventually;
using tokenbroker::test::io_thread;
using tokenbroker::test::options_for;
using tokenbroker::test::watch_log;

namespace {

// A watch running on the io thread; stopped and awaited at scope exit.
class running_watch {
 public:
  running_watch(io_thread& io, etcd_client& c, std::string prefix, std::int64_t from = 0)
      : io_(io), c_(c) {
    done_ = net::co_spawn(
        io.executor(),
        c.watch(std::move(prefix), from, [this](const watch_event& e) { log.event(e); },
                [this] { log.resync(); }),
        net::use_future);
  }
  ~running_watch() { stop(); }
  /// Stops the client and waits for the watch to return; false if it did not within 2 s.
  bool stop() {
    if (!done_.valid()) return true;
    io_.post_wait([this] { c_.stop(); });
    bool ended = done_.wait_for(2s) == std::future_status::ready;
    if (ended) done_.get();
    return ended;
  }
  watch_log log;

 private:
  io_thread& io_;
  etcd_client& c_;
  std::future<void> done_;
};

std::string describe(const std::vector<watch_event>& events) {
  std::string out;
  for (const auto& e : events)
    out += (e.what == watch_event::kind::put ? "put " : "del ") + e.record.key + "=" +
           e.record.value + "@" + std::to_string(e.record.mod_revision) + "\n";
  return out;
}

}  // namespace

TEST_CASE("watch delivers puts and deletes under the prefix, in order, exactly once") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  running_watch w(io, c, "w/");
  REQUIRE(eventually([&] { return w.log.resyncs() == 1; }));  // established: the caller re-reads

  auto r1 = io.await(c.put("w/a", "1")).value();
  auto r2 = io.await(c.put("w/b", std::string("\x00\xff", 2))).value();
  io.await(c.put("x/outside", "not watched")).value();
  std::vector<compare> none;
  std::vector<txn_op> two{{txn_op::kind::erase, "w/a", {}, 0}, {txn_op::kind::put, "w/c", "3", 0}};
  auto r3 = io.await(c.txn(none, two)).value().revision;
  REQUIRE(eventually([&] { return w.log.size() >= 4; }));
  auto r4 = io.await(c.put("w/d", "4")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 5; }));

  auto ev = w.log.events();
  INFO(describe(ev));
  REQUIRE(ev.size() == 5);
  CHECK(ev[0].what == watch_event::kind::put);
  CHECK(ev[0].record.key == "w/a");
  CHECK(ev[0].record.value == "1");
  CHECK(ev[0].record.mod_revision == r1);
  CHECK(ev[1].record.key == "w/b");
  CHECK(ev[1].record.value == std::string("\x00\xff", 2));
  CHECK(ev[1].record.mod_revision == r2);
  // Both halves of one transaction, at one revision.
  CHECK(ev[2].what == watch_event::kind::erase);
  CHECK(ev[2].record.key == "w/a");
  CHECK(ev[2].record.mod_revision == r3);
  CHECK(ev[3].what == watch_event::kind::put);
  CHECK(ev[3].record.key == "w/c");
  CHECK(ev[3].record.mod_revision == r3);
  CHECK(ev[4].record.key == "w/d");
  CHECK(ev[4].record.mod_revision == r4);
  CHECK(c.healthy());
  CHECK(w.stop());
  CHECK(w.log.size() == 5);
}

TEST_CASE("watch resumes after etcd restarts, without missing or repeating an event") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}, 1s));
  running_watch w(io, c, "r/");
  REQUIRE(eventually([&] { return w.log.resyncs() == 1; }));
  io.await(c.put("r/1", "before")).value();
  REQUIRE(eventually([&] { return w.log.size() == 1; }));

  etcd.stop();
  CHECK(eventually([&] { return !c.healthy(); }, 5s));
  etcd.start();
  // Right after the restart, most likely before the watch has reconnected (its backoff).
  etcd_client writer(io.executor(), options_for({etcd.endpoint()}));
  io.await(writer.put("r/2", "while reconnecting")).value();
  io.await(writer.put("r/3", "just after")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 3; }));
  CHECK(c.healthy());
  io.await(writer.put("r/4", "later")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 4; }));

  // And once more with a crash instead of a clean stop.
  etcd.kill();
  etcd.start();
  io.await(writer.put("r/5", "after the crash")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 5; }));
  io.await(writer.put("r/6", "last")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 6; }));
  CHECK(w.stop());

  auto ev = w.log.events();
  INFO(describe(ev));
  REQUIRE(ev.size() == 6);
  for (std::size_t i = 0; i < ev.size(); ++i) {
    CHECK(ev[i].record.key == "r/" + std::to_string(i + 1));
    if (i > 0) CHECK(ev[i].record.mod_revision > ev[i - 1].record.mod_revision);
  }
  // The resumed watches proved continuity: no re-read was asked for after the first.
  CHECK(w.log.resyncs() == 1);
}

TEST_CASE("watch cut off while changes happen (and etcd restarts) gets each of them once after") {
  etcd_fixture etcd;
  io_thread io;
  test::tcp_relay relay(etcd.port());
  etcd_client c(io.executor(), options_for({relay.endpoint()}, 1s));
  etcd_client writer(io.executor(), options_for({etcd.endpoint()}));
  running_watch w(io, c, "p/");
  REQUIRE(eventually([&] { return w.log.resyncs() == 1; }));
  io.await(writer.put("p/1", "seen live")).value();
  REQUIRE(eventually([&] { return w.log.size() == 1; }));

  // The watch cannot reach etcd while these happen: it must fetch them when it reconnects.
  relay.cut();
  io.await(writer.put("p/2", "while cut off")).value();
  io.await(writer.put("p/3", "while cut off")).value();
  etcd.stop();
  etcd.start();
  io.await(writer.put("p/4", "after a restart, still cut off")).value();
  CHECK(w.log.size() == 1);
  relay.resume();
  REQUIRE(eventually([&] { return w.log.size() >= 4; }));
  io.await(writer.put("p/5", "live again")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 5; }));
  CHECK(w.stop());

  auto ev = w.log.events();
  INFO(describe(ev));
  REQUIRE(ev.size() == 5);
  for (std::size_t i = 0; i < ev.size(); ++i) CHECK(ev[i].record.key == "p/" + std::to_string(i + 1));
  CHECK(w.log.resyncs() == 1);  // continuity was proven, no re-read needed
}

TEST_CASE("a watch from a compacted revision asks for a re-read and goes on from now") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  auto old = io.await(c.put("cp/k", "1")).value();
  auto latest = io.await(c.put("cp/k", "2")).value();
  auto compacted = etcd.call("/v3/kv/compaction", {{"revision", std::to_string(latest)}});
  REQUIRE(compacted.status == 200);

  running_watch w(io, c, "cp/", old);
  // Established twice: the first is cancelled for compaction; the second starts from now.
  REQUIRE(eventually([&] { return w.log.resyncs() >= 2; }));
  auto rev = io.await(c.put("cp/k", "3")).value();
  REQUIRE(eventually([&] { return w.log.size() >= 1; }));
  auto ev = w.log.events();
  INFO(describe(ev));
  REQUIRE(ev.size() == 1);  // nothing from the compacted history
  CHECK(ev[0].record.value == "3");
  CHECK(ev[0].record.mod_revision == rev);
}

TEST_CASE("watch from a given revision delivers what happened since, without a resync gap") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  auto from = io.await(c.put("h/1", "a")).value();
  io.await(c.put("h/2", "b")).value();
  running_watch w(io, c, "h/", from);
  REQUIRE(eventually([&] { return w.log.size() >= 2; }));
  auto ev = w.log.events();
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].record.key == "h/1");
  CHECK(ev[1].record.key == "h/2");
}

TEST_CASE("watch works through the second endpoint when the first is dead, and stop() ends it") {
  etcd_fixture etcd;
  io_thread io;
  const std::string dead = "http://127.0.0.1:" + std::to_string(test::free_port());
  etcd_client c(io.executor(), options_for({dead, etcd.endpoint()}, 1s));
  running_watch w(io, c, "fw/");
  REQUIRE(eventually([&] { return w.log.resyncs() == 1; }));
  io.await(c.put("fw/k", "v")).value();
  REQUIRE(eventually([&] { return w.log.size() == 1; }));
  auto start = std::chrono::steady_clock::now();
  CHECK(w.stop());
  CHECK(std::chrono::steady_clock::now() - start < 1s);
}

TEST_CASE("watch with authentication on, across a restart that forgets the token") {
  test::etcd_fixture_options fo;
  fo.root_password = "watch-password";
  etcd_fixture etcd(fo);
  io_thread io;
  auto o = options_for({etcd.endpoint()}, 1s);
  o.username = "root";
  o.password = secret{fo.root_password};
  etcd_client c(io.executor(), o);
  etcd_client writer(io.executor(), o);  // its own token: the watch must renew its own
  running_watch w(io, c, "aw/");
  REQUIRE(eventually([&] { return w.log.resyncs() == 1; }));
  io.await(writer.put("aw/1", "v")).value();
  REQUIRE(eventually([&] { return w.log.size() == 1; }));
  etcd.stop();
  etcd.start();
  io.await(writer.put("aw/2", "v")).value();
  REQUIRE(eventually([&] { return w.log.size() == 2; }));
  CHECK(w.log.resyncs() == 1);
}

TEST_CASE("watch over https with a client certificate, across a restart") {
  test::etcd_fixture_options fo;
  fo.tls = true;
  etcd_fixture etcd(fo);
  io_thread io;
  auto o = options_for({etcd.endpoint()}, 1s);
  o.ca_file = etcd.client_tls().ca_file;
  o.cert_file = etcd.client_tls().cert_file;
  o.key_file = etcd.client_tls().key_file;
  etcd_client c(io.executor(), o);
  running_watch w(io, c, "tw/");
  REQUIRE(eventually([&] { return w.log.resyncs() == 1; }));
  io.await(c.put("tw/1", "v")).value();
  REQUIRE(eventually([&] { return w.log.size() == 1; }));
  etcd.stop();
  etcd.start();
  io.await(c.put("tw/2", "v")).value();
  REQUIRE(eventually([&] { return w.log.size() == 2; }));
  auto events = w.log.events();
  CHECK(events[0].record.key == "tw/1");
  CHECK(events[1].record.key == "tw/2");
  CHECK(w.log.resyncs() == 1);
}
