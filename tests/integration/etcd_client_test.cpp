// lib/cluster's etcd client against a real etcd: key-value records with binary values, the
// transactions a lock is made of, leases, endpoints that are down, authentication, and https
// with client certificates.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/random.hpp"
#include "etcd_harness.hpp"
#include "support/certs.hpp"
#include "support/temp_dir.hpp"

using namespace tokenbroker;
using namespace tokenbroker::cluster;
using namespace std::chrono_literals;
using tokenbroker::test::etcd_fixture;
using tokenbroker::test::etcd_fixture_options;
using tokenbroker::test::io_thread;
using tokenbroker::test::options_for;

namespace {

const std::string k_binary("\x00\xff\xfe bin\x80\n\"\\", 11);

}  // namespace

TEST_CASE("records round-trip with binary and empty values, and a prefix reads only its keys") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));

  auto rev = io.await(c.put("app/bin", k_binary));
  REQUIRE(rev.has_value());
  auto got = io.await(c.get("app/bin"));
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->key == "app/bin");
  CHECK((*got)->value == k_binary);
  CHECK((*got)->mod_revision == *rev);
  CHECK((*got)->create_revision == *rev);
  CHECK((*got)->version == 1);
  CHECK((*got)->lease == 0);
  CHECK(c.healthy());

  REQUIRE(io.await(c.put("app/empty", "")).has_value());
  auto empty = io.await(c.get("app/empty"));
  REQUIRE(empty.has_value());
  REQUIRE(empty->has_value());  // present with an empty value, not absent
  CHECK((*empty)->value.empty());

  auto missing = io.await(c.get("app/none"));
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());

  // "app0" is the prefix's end ('/' + 1): outside. A key ending in 0xff exercises the carry.
  REQUIRE(io.await(c.put("app0", "outside")).has_value());
  REQUIRE(io.await(c.put("apo", "outside")).has_value());
  const std::string high("bin\xff", 4);
  REQUIRE(io.await(c.put(high + "x", "in")).has_value());
  REQUIRE(io.await(c.put("bio", "outside")).has_value());
  auto all = io.await(c.get_prefix("app/"));
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].key == "app/bin");
  CHECK((*all)[0].value == k_binary);
  CHECK((*all)[1].key == "app/empty");
  auto highs = io.await(c.get_prefix(high));
  REQUIRE(highs.has_value());
  REQUIRE(highs->size() == 1);
  CHECK((*highs)[0].key == high + "x");
  auto none = io.await(c.get_prefix("zzz/"));
  REQUIRE(none.has_value());
  CHECK(none->empty());

  // A second put moves mod_revision and version, keeps create_revision.
  auto rev2 = io.await(c.put("app/bin", "v2"));
  REQUIRE(rev2.has_value());
  CHECK(*rev2 > *rev);
  auto again = io.await(c.get("app/bin"));
  REQUIRE(again.has_value());
  CHECK((*again)->value == "v2");
  CHECK((*again)->create_revision == *rev);
  CHECK((*again)->mod_revision == *rev2);
  CHECK((*again)->version == 2);
}

TEST_CASE("a lock's transactions: create-if-absent, lease fence, mod_revision guard") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  auto mine = io.await(c.lease_grant(30s));
  auto theirs = io.await(c.lease_grant(30s));
  REQUIRE(mine.has_value());
  REQUIRE(theirs.has_value());
  CHECK(*mine != *theirs);

  auto acquire = [&](std::int64_t lease, const std::string& owner) {
    std::vector<compare> cmp{{"lock/cred", compare::target::create_revision, compare::op::equal, 0, {}}};
    std::vector<txn_op> ok{{txn_op::kind::put, "lock/cred", owner, lease}};
    std::vector<txn_op> held{{txn_op::kind::get, "lock/cred", {}, 0}};
    return io.await(c.txn(cmp, ok, held));
  };
  auto first = acquire(*mine, "replica-a");
  REQUIRE(first.has_value());
  CHECK(first->succeeded);
  CHECK(first->revision > 0);
  CHECK(first->gets.empty());  // the success branch had no get
  auto second = acquire(*theirs, "replica-b");
  REQUIRE(second.has_value());
  CHECK_FALSE(second->succeeded);
  REQUIRE(second->gets.size() == 1);
  REQUIRE(second->gets[0].has_value());
  CHECK(second->gets[0]->value == "replica-a");
  CHECK(second->gets[0]->lease == *mine);
  CHECK(second->gets[0]->create_revision == first->revision);

  // The fence: a write that only the lock's holder (by lease) may make.
  auto fenced_put = [&](std::int64_t lease, const std::string& value) {
    std::vector<compare> cmp{{"lock/cred", compare::target::lease, compare::op::equal, lease, {}}};
    std::vector<txn_op> ok{{txn_op::kind::put, "state/cred", value, 0},
                           {txn_op::kind::get, "state/cred", {}, 0}};
    std::vector<txn_op> no{{txn_op::kind::get, "state/cred", {}, 0},
                           {txn_op::kind::get, "lock/none", {}, 0}};
    return io.await(c.txn(cmp, ok, no));
  };
  auto held = fenced_put(*mine, k_binary);
  REQUIRE(held.has_value());
  CHECK(held->succeeded);
  REQUIRE(held->gets.size() == 1);
  REQUIRE(held->gets[0].has_value());
  CHECK(held->gets[0]->value == k_binary);
  const auto written_at = held->gets[0]->mod_revision;
  CHECK(written_at == held->revision);
  auto stale = fenced_put(*theirs, "from the wrong holder");
  REQUIRE(stale.has_value());
  CHECK_FALSE(stale->succeeded);
  REQUIRE(stale->gets.size() == 2);
  REQUIRE(stale->gets[0].has_value());
  CHECK(stale->gets[0]->value == k_binary);  // untouched
  CHECK_FALSE(stale->gets[1].has_value());

  // mod_revision as a compare-and-swap: the stale revision loses, the current one wins.
  auto cas = [&](std::int64_t rev, std::string value) {
    std::vector<compare> cmp{{"state/cred", compare::target::mod_revision, compare::op::equal, rev, {}}};
    std::vector<txn_op> ok{{txn_op::kind::put, "state/cred", std::move(value), 0}};
    return io.await(c.txn(cmp, ok));
  };
  auto lost = cas(written_at - 1, "lost");
  REQUIRE(lost.has_value());
  CHECK_FALSE(lost->succeeded);
  auto won = cas(written_at, "won");
  REQUIRE(won.has_value());
  CHECK(won->succeeded);
  CHECK((*io.await(c.get("state/cred")))->value == "won");

  // value and version compares, and erase in a branch.
  std::vector<compare> cmp{{"state/cred", compare::target::value, compare::op::equal, 0, "won"},
                           {"state/cred", compare::target::version, compare::op::greater, 1, {}}};
  std::vector<txn_op> erase{{txn_op::kind::erase, "state/cred", {}, 0}};
  auto erased = io.await(c.txn(cmp, erase));
  REQUIRE(erased.has_value());
  CHECK(erased->succeeded);
  CHECK_FALSE(io.await(c.get("state/cred"))->has_value());
  std::vector<compare> mismatch{{"lock/cred", compare::target::value, compare::op::not_equal, 0, "replica-a"}};
  auto no = io.await(c.txn(mismatch, erase));
  REQUIRE(no.has_value());
  CHECK_FALSE(no->succeeded);
}

TEST_CASE("leases: keepalive renews, revoke deletes the keys attached, then the lease is gone") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  auto lease = io.await(c.lease_grant(20s));
  REQUIRE(lease.has_value());
  REQUIRE(io.await(c.put("lease/key", "held", *lease)).has_value());
  auto rec = io.await(c.get("lease/key"));
  REQUIRE(rec.has_value());
  CHECK((*rec)->lease == *lease);
  auto ttl = io.await(c.lease_keepalive(*lease));
  REQUIRE(ttl.has_value());
  CHECK(*ttl == 20s);

  REQUIRE(io.await(c.lease_revoke(*lease)).has_value());
  auto gone = io.await(c.get("lease/key"));
  REQUIRE(gone.has_value());
  CHECK_FALSE(gone->has_value());
  auto after = io.await(c.lease_keepalive(*lease));
  REQUIRE_FALSE(after.has_value());
  CHECK(after.error().code == errc::not_found);
  auto twice = io.await(c.lease_revoke(*lease));
  REQUIRE_FALSE(twice.has_value());
  CHECK(twice.error().code == errc::not_found);
  // A put attached to a lease that does not exist is refused, not applied.
  auto orphan = io.await(c.put("lease/orphan", "x", *lease));
  REQUIRE_FALSE(orphan.has_value());
  CHECK(orphan.error().code == errc::not_found);
  CHECK_FALSE(io.await(c.get("lease/orphan"))->has_value());
}

TEST_CASE("a lease left without keepalive expires: its key disappears, keepalive says not_found") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  auto lease = io.await(c.lease_grant(2s));
  REQUIRE(lease.has_value());
  REQUIRE(io.await(c.put("expiring", "v", *lease)).has_value());
  auto start = std::chrono::steady_clock::now();
  CHECK(test::eventually([&] { return !io.await(c.get("expiring")).value().has_value(); }, 15s));
  CHECK(std::chrono::steady_clock::now() - start >= 1s);  // it did live out (most of) its TTL
  auto ka = io.await(c.lease_keepalive(*lease));
  REQUIRE_FALSE(ka.has_value());
  CHECK(ka.error().code == errc::not_found);
}

TEST_CASE("a dead first endpoint is skipped; the live one serves, and is tried first afterwards") {
  etcd_fixture etcd;
  io_thread io;
  const std::string dead = "http://127.0.0.1:" + std::to_string(test::free_port());
  etcd_client c(io.executor(), options_for({dead, etcd.endpoint()}, 2s));
  REQUIRE(io.await(c.put("fo/k", "v")).has_value());
  auto got = io.await(c.get("fo/k"));
  REQUIRE(got.has_value());
  CHECK((*got)->value == "v");
  CHECK(c.healthy());
}

TEST_CASE("no endpoint alive: errc::unavailable within the timeout, naming every endpoint") {
  io_thread io;
  // One refuses connections; the other accepts them (the kernel's backlog) but never answers.
  const std::string refused = "http://127.0.0.1:" + std::to_string(test::free_port());
  int silent = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(silent, 8) == 0);
  REQUIRE(::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  const std::string hung = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));

  etcd_client c(io.executor(), options_for({refused, hung}, 700ms));
  auto start = std::chrono::steady_clock::now();
  auto r = io.await(c.get("k"));
  auto took = std::chrono::steady_clock::now() - start;
  ::close(silent);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::unavailable);
  CHECK(r.error().message.find(refused.substr(7)) != std::string::npos);
  CHECK(r.error().message.find(hung.substr(7)) != std::string::npos);
  CHECK(took >= 600ms);   // it did wait for the silent one
  CHECK(took < 2500ms);   // but only about one timeout
  CHECK_FALSE(c.healthy());
}

TEST_CASE("stop() makes later calls fail at once") {
  etcd_fixture etcd;
  io_thread io;
  etcd_client c(io.executor(), options_for({etcd.endpoint()}));
  REQUIRE(io.await(c.put("k", "v")).has_value());
  io.post_wait([&] { c.stop(); });
  auto r = io.await(c.get("k"));
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::unavailable);
  CHECK_FALSE(c.healthy());
}

TEST_CASE("authentication: the right password works, survives an etcd restart; others are refused") {
  test::etcd_fixture_options fo;
  fo.root_password = "correct horse battery";
  etcd_fixture etcd(fo);
  io_thread io;

  auto with = [&](std::string user, std::string password) {
    auto o = options_for({etcd.endpoint()});
    o.username = std::move(user);
    o.password = secret{std::move(password)};
    return o;
  };
  etcd_client good(io.executor(), with("root", fo.root_password));
  REQUIRE(io.await(good.put("auth/k", "v")).has_value());
  CHECK((*io.await(good.get("auth/k")))->value == "v");

  // Simple tokens live in etcd's memory: after a restart ours is refused, and the client
  // authenticates again without the caller noticing.
  etcd.stop();
  etcd.start();
  auto after = io.await(good.get("auth/k"));
  REQUIRE(after.has_value());
  CHECK((*after)->value == "v");

  etcd_client wrong(io.executor(), with("root", "not the password"));
  auto refused = io.await(wrong.get("auth/k"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == errc::unauthorized);
  CHECK(refused.error().message.find("not the password") == std::string::npos);
  CHECK(wrong.healthy());  // etcd answered; it is the credentials that are wrong

  etcd_client anonymous(io.executor(), options_for({etcd.endpoint()}));
  auto anon = io.await(anonymous.put("auth/k", "x"));
  REQUIRE_FALSE(anon.has_value());
  CHECK(anon.error().code == errc::unauthorized);
  CHECK((*io.await(good.get("auth/k")))->value == "v");
}

// https with client-certificate authentication: etcd --client-cert-auth lets in only clients
// presenting a certificate from its CA, and the client verifies etcd's certificate.

namespace {

etcd_fixture_options tls_etcd() {
  etcd_fixture_options fo;
  fo.tls = true;
  return fo;
}

etcd_options with_files(const std::string& endpoint, const test::tls_files& files,
                        std::chrono::milliseconds timeout = 3s) {
  auto o = options_for({endpoint}, timeout);
  o.ca_file = files.ca_file;
  o.cert_file = files.cert_file;
  o.key_file = files.key_file;
  return o;
}

}  // namespace

TEST_CASE("https with a client certificate: records, transactions, leases, across a restart") {
  etcd_fixture etcd(tls_etcd());
  REQUIRE(etcd.endpoint().starts_with("https://127.0.0.1:"));
  io_thread io;
  etcd_client c(io.executor(), with_files(etcd.endpoint(), etcd.client_tls()));

  auto rev = io.await(c.put("tls/bin", k_binary));
  REQUIRE(rev.has_value());
  auto got = io.await(c.get("tls/bin"));
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((*got)->value == k_binary);
  CHECK((*got)->mod_revision == *rev);
  CHECK(c.healthy());

  // The lock's create-if-absent on a lease, and a keepalive (a streamed RPC in the gateway).
  auto lease = io.await(c.lease_grant(10s));
  REQUIRE(lease.has_value());
  std::vector<compare> absent{{"tls/lock", compare::target::version, compare::op::equal, 0, {}}};
  std::vector<txn_op> take{{txn_op::kind::put, "tls/lock", "me", *lease}};
  auto lock = io.await(c.txn(absent, take));
  REQUIRE(lock.has_value());
  CHECK(lock->succeeded);
  auto ka = io.await(c.lease_keepalive(*lease));
  REQUIRE(ka.has_value());
  CHECK(*ka == 10s);

  // What etcd stored is what it shows to another client with the same certificate.
  auto raw = etcd.call("/v3/kv/range", {{"key", base64_encode("tls/lock")}});
  REQUIRE(raw.status == 200);
  CHECK(raw.json()["kvs"][0]["value"] == base64_encode("me"));

  // The pooled TLS connection dies with etcd; the next call opens and verifies a new one.
  etcd.stop();
  etcd.start();
  auto after = io.await(c.get("tls/bin"));
  REQUIRE(after.has_value());
  REQUIRE(after->has_value());
  CHECK((*after)->value == k_binary);

  // The certificate names localhost too (DNS SAN): the host name checked is the one dialled.
  etcd_client by_name(io.executor(),
                      with_files("https://localhost:" + std::to_string(etcd.port()),
                                 etcd.client_tls()));
  auto named = io.await(by_name.get("tls/bin"));
  REQUIRE(named.has_value());
  CHECK((*named)->value == k_binary);
}

TEST_CASE("https without a client certificate: etcd refuses the connection, the error says so") {
  etcd_fixture etcd(tls_etcd());
  io_thread io;
  const auto origin = etcd.endpoint().substr(8);  // 127.0.0.1:PORT
  auto files = etcd.client_tls();
  files.cert_file.clear();
  files.key_file.clear();
  etcd_client anonymous(io.executor(), with_files(etcd.endpoint(), files));

  for (int i = 0; i < 3; ++i) {  // the same clear answer every time, and nothing breaks
    auto r = io.await(anonymous.put("tls/k", "anonymous"));
    REQUIRE_FALSE(r.has_value());
    INFO(r.error().message);
    CHECK(r.error().code == errc::unavailable);
    CHECK(r.error().message.find(origin) != std::string::npos);
    CHECK(r.error().message.find("certificate") != std::string::npos);
    CHECK_FALSE(anonymous.healthy());
  }

  // etcd itself is fine, and nothing was written.
  etcd_client good(io.executor(), with_files(etcd.endpoint(), etcd.client_tls()));
  auto got = io.await(good.get("tls/k"));
  REQUIRE(got.has_value());
  CHECK_FALSE(got->has_value());
  CHECK(good.healthy());
}

TEST_CASE("https with another CA: the client refuses etcd's certificate, naming the endpoint") {
  etcd_fixture etcd(tls_etcd());
  io_thread io;
  const auto origin = etcd.endpoint().substr(8);
  test::temp_dir dir;
  test::test_ca unrelated("unrelated test CA");
  auto files = etcd.client_tls();
  files.ca_file = dir.write("other-ca.pem", unrelated.cert_pem());
  etcd_client c(io.executor(), with_files(etcd.endpoint(), files));

  auto r = io.await(c.put("tls/k", "unverified"));
  REQUIRE_FALSE(r.has_value());
  INFO(r.error().message);
  CHECK(r.error().code == errc::unavailable);
  CHECK(r.error().message.find(origin) != std::string::npos);
  CHECK(r.error().message.find("certificate verify failed") != std::string::npos);
  CHECK_FALSE(c.healthy());

  etcd_client good(io.executor(), with_files(etcd.endpoint(), etcd.client_tls()));
  auto got = io.await(good.get("tls/k"));
  REQUIRE(got.has_value());
  CHECK_FALSE(got->has_value());  // the request never left the client
}
