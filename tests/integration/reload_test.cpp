// SIGHUP (issue 6): the config and secret files are re-read and applied in one step; tokens,
// state and open connections are kept; only a changed grant identity costs a new grant; a bad
// config is refused and the old one keeps serving. And `tokenbrokerctl ready` for probes.
#include <doctest/doctest.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "broker_fixture.hpp"
#include "support/eventually.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using local = net::local::stream_protocol;

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_private(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::trunc) << content;
  ::chmod(path.c_str(), 0600);
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "config has no \"" << from << "\"");
  return text.replace(at, from.size(), to);
}

/// Sends SIGHUP and waits until the daemon logged the reload's outcome; returns the log written
/// since (the reload's lines).
std::string reload(broker_fixture& b) {
  auto before = b.proc().stderr_text();
  auto outcomes = count(before, " reloaded: ") + count(before, "reload refused");
  b.proc().kill(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    auto log = b.proc().stderr_text();
    if (count(log, " reloaded: ") + count(log, "reload refused") > outcomes)
      return log.substr(std::min(before.size(), log.size()));
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "no reload outcome logged:\n"
                                                                     << log);
    std::this_thread::sleep_for(10ms);
  }
}

/// The value of a counter line of /metrics ("name{labels} value"), 0 when absent.
double metric(const broker_fixture& b, const std::string& series) {
  auto r = b.call("GET", "/metrics");
  REQUIRE(r.status == 200);
  auto at = r.body.find(series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(r.body.substr(at + series.size() + 1));
}

std::string token_of(const broker_fixture& b, const std::string& name) {
  auto r = b.call("GET", "/v1/token/" + name);
  REQUIRE_MESSAGE(r.status == 200, name << ": " << r.status << " " << r.body << r.error);
  return r.json()["access_token"].get<std::string>();
}

int sim_requests(const sim_fixture& sim, const std::string& path) {
  auto stats = sim.stats();
  return stats["requests"].value(path, 0);
}

/// A client connection kept open across requests (HTTP/1.1 keep-alive).
class connection {
 public:
  explicit connection(const std::string& socket_path) : s_(io_) {
    s_.connect(local::endpoint(socket_path));
    timeval tv{30, 0};
    ::setsockopt(s_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  /// Writes raw bytes.
  void send(const std::string& bytes) { net::write(s_, net::buffer(bytes)); }
  /// Reads one answer.
  bhttp::response<bhttp::string_body> read() {
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s_, buffer_, res);
    return res;
  }
  bhttp::response<bhttp::string_body> get(const std::string& target) {
    send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    return read();
  }

 private:
  net::io_context io_;
  local::socket s_;
  boost::beast::flat_buffer buffer_;
};

struct ctl_result {
  int code = -1;  // -1: it did not end
  std::string err;
};

/// Runs tokenbrokerctl with `args`: its exit code and stderr.
ctl_result ctl(const temp_dir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), bin_path("tokenbrokerctl"));
  static int runs = 0;
  process p(process_options{args, {}, {}, dir.file("ctl" + std::to_string(runs++) + ".log")});
  auto st = p.wait_exit(20s);
  if (!st || !st->exited) return {-1, p.stderr_text()};
  return {st->code, p.stderr_text()};
}

/// GET `target` from a child running as `uid`: 200, 403, or negative when it could not ask.
int status_as(const std::string& socket, const std::string& target, uid_t uid) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(250);
    auto r = unix_call(socket, "GET", target, {}, {}, 15s);
    ::_exit(r.status == 200 ? 0 : r.status == 403 ? 1 : 252);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (!WIFEXITED(st)) return -1;
  return WEXITSTATUS(st) == 0 ? 200 : WEXITSTATUS(st) == 1 ? 403 : -WEXITSTATUS(st);
}

}  // namespace

TEST_CASE("a_reload_keeps_waiting_callers_a_streaming_upload_and_idle_connections") {
  // 20 s tokens: a caller asking for 15 s of validity forces a refresh (see drain_test.cpp).
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "20s"}));
  broker_fixture b(sim);
  REQUIRE(
      eventually([&] { return b.call("GET", "/v1/token/privicore").json()["expires_in"] <= 15; }));

  connection idle(b.socket_path());
  REQUIRE(idle.get("/healthz").result_int() == 200);

  // An upload of 4 MB, half sent when the reload comes.
  constexpr std::size_t upload_size = 4 * 1024 * 1024;
  connection upload(b.socket_path());
  upload.send(
      "POST /v1/proxy/privicore/data-token/upload HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Length: " +
      std::to_string(upload_size) + "\r\n\r\n");
  upload.send(std::string(upload_size / 2, 'x'));
  REQUIRE(eventually([&] { return sim_requests(sim, "/data-token/upload") >= 1; }));

  // Callers waiting on a refresh whose answer trickles in (about 1.7 s).
  const std::string refresh_path = "/oauth-application/refresh-access-token";
  sim.fault({{"path", refresh_path}, {"kind", "slow_body"}, {"interval_ms", 6}, {"count", 1}});
  constexpr int callers = 3;
  std::atomic<int> done{0};
  std::vector<http_result> results(callers);
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i)
    threads.emplace_back([&, i] {
      results[i] = b.call("GET", "/v1/token/privicore?min_valid=15", {}, {}, 30s);
      ++done;
    });
  REQUIRE(eventually(
      [&] { return sim_requests(sim, refresh_path) >= 1 && b.state() == "refreshing"; }));

  // The reload changes what the provider and the proxy target are built from (timeout): the
  // provider is swapped only once the refresh in flight has ended.
  write_private(b.config_path(), read_file(b.config_path()) + "timeout = \"31s\"\n");
  auto log = reload(b);
  CHECK_MESSAGE(contains(log, "credential privicore: timeout changed"), log);
  CHECK(done == 0);

  upload.send(std::string(upload_size / 2, 'x'));
  auto up = upload.read();
  CHECK(up.result_int() == 200);
  CHECK_MESSAGE(contains(up.body(), "\"bytes\":" + std::to_string(upload_size)), up.body());

  for (auto& t : threads) t.join();
  std::string token;
  for (const auto& r : results) {
    REQUIRE_MESSAGE(r.status == 200, r.body, r.error, b.proc().stderr_text());
    if (token.empty()) token = r.json()["access_token"];
    CHECK(r.json()["access_token"] == token);
  }
  auto stats = sim.stats();
  CHECK(stats["refreshes"] == 1);  // one refresh served every caller, before and after the swap
  CHECK(stats["grants"] == 1);

  // Both connections are still usable, and the next refresh runs on the new provider.
  CHECK(idle.get("/healthz").result_int() == 200);
  auto again = upload.get("/v1/token/privicore");
  CHECK(again.result_int() == 200);
  auto forced = b.call("POST", "/v1/credentials/privicore/refresh");
  CHECK_MESSAGE(forced.status == 200, forced.body);
  CHECK(sim.stats()["refreshes"] == 2);
  CHECK(metric(b, "tokenbroker_config_reloads_total{result=\"ok\"}") == 1);
}

TEST_CASE("operational_changes_apply_without_a_refresh_or_a_grant") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto token = b.token();
  bool root = ::geteuid() == 0;
  ::chmod(b.dir().path().c_str(), 0711);  // callers of other uids reach the socket
  ::chmod(b.socket_path().c_str(), 0666);
  if (root) CHECK(status_as(b.socket_path(), "/v1/token/privicore", 4243) == 200);

  auto cfg = read_file(b.config_path());
  cfg = replaced(cfg, "refresh_margin = \"1s\"", "refresh_margin = \"90s\"");
  cfg += "allow_uids = [4242]\ninject_header = \"X-Other\"\n";
  write_private(b.config_path(), cfg);
  auto log = reload(b);
  CHECK_MESSAGE(
      contains(log, "refresh_margin, inject_header, allow_uids changed; applied, tokens kept"),
      log);

  if (root) {
    CHECK(status_as(b.socket_path(), "/v1/token/privicore", 4243) == 403);
    CHECK(status_as(b.socket_path(), "/v1/token/privicore", 4242) == 200);
  } else {
    MESSAGE("allow_uids not exercised: callers of other uids need root");
  }
  CHECK(b.token() == token);
  CHECK(b.state() == "fresh");
  auto stats = sim.stats();
  CHECK(stats["grants"] == 1);
  CHECK(stats["refreshes"] == 0);
  CHECK(stats["authentications"] == 1);
}

TEST_CASE("a_rotated_password_keeps_the_tokens_and_the_next_grant_uses_it") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto token = b.token();

  // A wrong password first: applied without a grant, the tokens are kept...
  write_private(b.dir().file("password"), "not-the-password");
  auto log = reload(b);
  CHECK_MESSAGE(contains(log, "password changed; provider rebuilt between refreshes, tokens kept"),
                log);
  CHECK_FALSE(contains(log, "not-the-password"));
  CHECK(b.token() == token);
  auto stats = sim.stats();
  CHECK(stats["authentications"] == 1);
  CHECK(stats["authentication_failures"] == 0);

  // ...and the next grant logs in with it. The grant is revoked upstream: the refresh is
  // refused, and the re-grant is refused for the password.
  sim.revoke_grants(test_client_id);
  auto refused = b.call("POST", "/v1/credentials/privicore/refresh");
  CHECK(refused.status == 503);
  REQUIRE(eventually([&] { return sim.stats()["authentication_failures"] >= 1; }));
  CHECK(sim.stats()["grants"] == 1);

  // The right password again: the reload clears the failure, and the grant succeeds at once.
  write_private(b.dir().file("password"), test_password);
  reload(b);
  REQUIRE(eventually([&] { return sim.stats()["grants"] == 2; }));
  REQUIRE(b.wait_for_state("fresh", 10s));
  CHECK(b.token() != token);
  CHECK(metric(b, "tokenbroker_config_reloads_total{result=\"ok\"}") == 2);
}

TEST_CASE("a_changed_grant_identity_grants_again_and_credentials_come_and_go_with_their_state") {
  sim_fixture sim(sim_flags_for_broker({"--app", "grantor:second-client:second-secret-value"}));
  broker_fixture b(sim);
  auto first = b.token();
  write_private(b.dir().file("second-secret"), "second-secret-value");
  auto base = read_file(b.config_path());

  // client_id names another OAuth application: the held tokens belong to the first one.
  auto cfg = replaced(base, std::string("client_id = \"") + test_client_id + "\"",
                      "client_id = \"second-client\"");
  cfg = replaced(cfg, b.dir().file("client-secret"), b.dir().file("second-secret"));
  write_private(b.config_path(), cfg);
  auto log = reload(b);
  CHECK_MESSAGE(contains(log,
                         "client_id, client_secret changed; the tokens held belong to the "
                         "previous grant"),
                log);
  std::string regranted;
  REQUIRE(eventually([&] {
    auto r = b.call("GET", "/v1/token/privicore");
    if (r.status == 200) regranted = r.json()["access_token"];
    return r.status == 200 && regranted != first;
  }));
  CHECK(sim.check(regranted)["client_id"] == "second-client");
  CHECK(sim.stats()["grants"] == 2);

  // Added: a second credential starts like at start-up.
  auto second_table = "\n[credential.second]\nprovider = \"privicore\"\napi_url = \"" + sim.url() +
                      "\"\nclient_id = \"" + test_client_id + "\"\nclient_secret_file = \"" +
                      b.dir().file("client-secret") + "\"\nusername = \"" + test_username +
                      "\"\npassword_file = \"" + b.dir().file("password") + "\"\n";
  write_private(b.config_path(), cfg + second_table);
  log = reload(b);
  CHECK_MESSAGE(contains(log, "credential second: added"), log);
  REQUIRE(b.wait_for_state("fresh", 10s, "second"));
  auto second_token = token_of(b, "second");
  CHECK(sim.stats()["grants"] == 3);
  CHECK(token_of(b, "privicore") == regranted);

  // Removed while a proxied upload through it is half sent: the upload completes.
  constexpr std::size_t upload_size = 2 * 1024 * 1024;
  connection upload(b.socket_path());
  upload.send(
      "POST /v1/proxy/second/data-token/upload HTTP/1.1\r\nHost: localhost\r\n"
      "Content-Length: " +
      std::to_string(upload_size) + "\r\n\r\n");
  upload.send(std::string(upload_size / 2, 'x'));
  REQUIRE(eventually([&] { return sim_requests(sim, "/data-token/upload") >= 1; }));
  write_private(b.config_path(), cfg);
  log = reload(b);
  CHECK_MESSAGE(contains(log, "credential second: removed"), log);
  CHECK(b.call("GET", "/v1/token/second").status == 404);
  upload.send(std::string(upload_size / 2, 'x'));
  auto up = upload.read();
  CHECK(up.result_int() == 200);
  CHECK_MESSAGE(contains(up.body(), "\"bytes\":" + std::to_string(upload_size)), up.body());
  CHECK(std::filesystem::exists(b.dir().file("state") + "/second.state"));

  // Added back: its saved grant is used, no new grant.
  write_private(b.config_path(), cfg + second_table);
  reload(b);
  REQUIRE(b.wait_for_state("fresh", 10s, "second"));
  CHECK(token_of(b, "second") == second_token);
  CHECK(sim.stats()["grants"] == 3);

  // And the changed identity is what was persisted: a restart serves the second grant's token.
  b.restart(SIGTERM);
  CHECK(b.token() == regranted);
  CHECK(sim.stats()["grants"] == 3);
}

TEST_CASE("an_invalid_config_is_refused_and_the_running_one_keeps_serving") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto token = b.token();
  auto good = read_file(b.config_path());

  write_private(b.config_path(), good + "\n[server\nbroken");
  auto log = reload(b);
  CHECK_MESSAGE(contains(log, "reload refused, keeping the running config"), log);
  CHECK(b.token() == token);

  write_private(b.config_path(),
                replaced(good, b.dir().file("client-secret"), b.dir().file("no-such-secret")));
  log = reload(b);
  CHECK_MESSAGE(contains(log, "reload refused"), log);
  CHECK_MESSAGE(contains(log, "no-such-secret"), log);
  CHECK(b.token() == token);
  CHECK(b.state() == "fresh");
  CHECK(metric(b, "tokenbroker_config_reloads_total{result=\"error\"}") == 2);
  CHECK(metric(b, "tokenbroker_config_reloads_total{result=\"ok\"}") == 0);

  // The running config is still the reference: restoring it is a reload with nothing changed.
  write_private(b.config_path(), good);
  log = reload(b);
  CHECK_MESSAGE(contains(log, "0 added, 0 changed"), log);
  CHECK(sim.stats()["grants"] == 1);
}

TEST_CASE("server_keys_that_need_a_restart_are_logged_and_the_rest_is_applied") {
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "20s"}));
  broker_options o;
  o.extra_server = "token_wait = \"20s\"";
  broker_fixture b(sim, o);
  REQUIRE(
      eventually([&] { return b.call("GET", "/v1/token/privicore").json()["expires_in"] <= 15; }));

  auto cfg = replaced(read_file(b.config_path()), "token_wait = \"20s\"", "token_wait = \"1s\"");
  cfg = replaced(cfg, "socket = \"" + b.socket_path() + "\"",
                 "socket = \"" + b.dir().file("moved.sock") + "\"\nmax_connections = 10");
  write_private(b.config_path(), cfg);
  auto log = reload(b);
  CHECK_MESSAGE(contains(log,
                         "server.socket, server.max_connections changed: only a restart "
                         "applies that"),
                log);
  CHECK_FALSE(std::filesystem::exists(b.dir().file("moved.sock")));

  // token_wait is applied: a caller waiting on a refresh that hangs gives up after 1 s, not 20.
  sim.fault({{"path", "/oauth-application/refresh-access-token"}, {"kind", "hang"}, {"count", 1}});
  auto t0 = std::chrono::steady_clock::now();
  auto r = b.call("GET", "/v1/token/privicore?min_valid=15", {}, {}, 30s);
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(r.status == 503);
  CHECK(waited >= 900ms);
  CHECK(waited < 8s);
}

TEST_CASE("tokenbrokerctl_ready_exits_0_only_when_every_credential_holds_a_token") {
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;
  o.profile_login = false;
  broker_fixture b(sim, o);
  REQUIRE(b.wait_for_state("needs_grant", 10s));
  auto not_ready = ctl(b.dir(), {"--socket", b.socket_path(), "ready"});
  CHECK(not_ready.code == 1);
  CHECK_MESSAGE(contains(not_ready.err, "not ready: privicore (needs_grant)"), not_ready.err);
  auto health = ctl(b.dir(), {"--socket", b.socket_path(), "health"});
  CHECK_MESSAGE(health.code == 0, health.err);

  // A reload that adds the profile login: the credential grants, and the probe turns green.
  write_private(b.config_path(), read_file(b.config_path()) + "username = \"" + test_username +
                                     "\"\npassword_file = \"" + b.dir().file("password") + "\"\n");
  reload(b);
  REQUIRE(b.wait_for_state("fresh", 10s));
  auto ready = ctl(b.dir(), {"--socket", b.socket_path(), "ready"});
  CHECK_MESSAGE(ready.code == 0, ready.err);

  b.proc().terminate();
  auto down = ctl(b.dir(), {"--socket", b.socket_path(), "ready"});
  CHECK(down.code == 3);
  CHECK_MESSAGE(contains(down.err, "cannot reach the broker"), down.err);
  auto usage = ctl(b.dir(), {"--socket", b.socket_path(), "ready", "extra"});
  CHECK(usage.code == 2);
}
