// Who may use a credential, and what the daemon refuses to start with (issue 5): SO_PEERCRED
// allow lists on the unix socket (403 logged with the uid and counted), secret files and state
// directories others can read or write.
#include <doctest/doctest.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

/// GET `target` on `socket` from a child process running as uid/gid (with `groups` as its
/// supplementary groups); the HTTP status, or -1 when the child could not ask.
int status_as(const std::string& socket, const std::string& target, uid_t uid, gid_t gid,
              std::vector<gid_t> groups = {}) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
      ::_exit(250);
    auto r = unix_call(socket, "GET", target, {}, {}, 15s);
    ::_exit(r.status == 200 ? 0 : r.status == 403 ? 1 : r.status == 0 ? 251 : 252);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (!WIFEXITED(st)) return -1;
  switch (WEXITSTATUS(st)) {
    case 0: return 200;
    case 1: return 403;
    default: return -WEXITSTATUS(st);
  }
}

/// Starts tokenbrokerd on `config` and expects it to refuse: exit code 1, stderr returned.
std::string refused_start(const temp_dir& dir, const std::string& config) {
  process p(process_options{{bin_path("tokenbrokerd"), "--config", config}, {}, {},
                            dir.file("refused.log")});
  auto st = p.wait_exit(15s);
  REQUIRE(st.has_value());
  CHECK(st->code == 1);
  return p.stderr_text();
}

}  // namespace

TEST_CASE("on_the_unix_socket_the_allow_list_decides_by_peer_uid_and_gid_and_refusals_are_logged_and_counted") {
  if (::geteuid() != 0) {
    MESSAGE("skipped: callers of other uids need root to be impersonated");
    return;
  }
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;
  o.extra_credential = "allow_uids = [4242]\nallow_gids = [4343]\n";
  broker_fixture b(sim, o);
  // Let other users reach the socket, so SO_PEERCRED is what decides (the fixture makes the
  // socket 0600 in a 0700 directory; the secrets in it stay 0600).
  ::chmod(b.dir().path().c_str(), 0711);
  ::chmod(b.socket_path().c_str(), 0666);

  CHECK(status_as(b.socket_path(), "/v1/token/privicore", 4242, 4242) == 200);    // listed uid
  CHECK(status_as(b.socket_path(), "/v1/token/privicore", 5555, 4343) == 200);    // listed gid
  CHECK(status_as(b.socket_path(), "/v1/token/privicore", 65534, 65534) == 403);  // neither
  CHECK(b.token().size() > 0);  // the daemon's own user (root here) is always allowed

  auto metrics = b.call("GET", "/metrics").body;
  CHECK(contains(metrics,
                 "tokenbroker_token_requests_total{credential=\"privicore\",result=\"forbidden\"} 1"));
  CHECK(contains(b.proc().stderr_text(), "refused credential privicore to uid 65534"));
}

TEST_CASE("a_credential_with_an_allow_list_is_not_served_over_tcp") {
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;
  o.extra_server = "listen = \"127.0.0.1:0\"\n";
  o.extra_credential = "allow_uids = [4242]\n";
  broker_fixture b(sim, o);
  auto log = b.proc().stderr_text();
  auto at = log.find("listening on 127.0.0.1:");
  REQUIRE(at != std::string::npos);
  auto port = std::stoi(log.substr(at + std::string("listening on 127.0.0.1:").size()));
  auto r = http_call("http://127.0.0.1:" + std::to_string(port), "", "GET", "/v1/token/privicore",
                     {{"X-Token-Broker", "1"}});
  CHECK(r.status == 403);
  CHECK(r.json()["error"] == "forbidden");
  CHECK(contains(b.proc().stderr_text(), "refused credential privicore to uid unknown"));
}

TEST_CASE("at_start_up_secret_files_others_can_read_and_open_state_directories_are_refused") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  b.token();  // granted and saved
  b.proc().terminate();
  const auto& dir = b.dir();

  // A client secret readable by group or others: an error at start-up as at --check.
  ::chmod(dir.file("client-secret").c_str(), 0640);
  auto err = refused_start(dir, b.config_path());
  CHECK(contains(err, "client_secret_file"));
  CHECK(contains(err, "mode 0640"));
  ::chmod(dir.file("client-secret").c_str(), 0600);

  // The state key likewise.
  ::chmod(dir.file("state.key").c_str(), 0604);
  err = refused_start(dir, b.config_path());
  CHECK(contains(err, "state_key_file"));
  ::chmod(dir.file("state.key").c_str(), 0600);

  // A state directory others can write.
  ::chmod(dir.file("state").c_str(), 0777);
  err = refused_start(dir, b.config_path());
  CHECK(contains(err, dir.file("state")));
  CHECK(contains(err, "writable by group or others"));
  // One only others can read is tightened to 0700 at start-up, and its files are 0600.
  ::chmod(dir.file("state").c_str(), 0755);
  b.restart(SIGTERM);
  struct stat st{};
  ::stat(dir.file("state").c_str(), &st);
  CHECK((st.st_mode & 0777) == 0700);
  ::stat(dir.file("state/privicore.state").c_str(), &st);
  CHECK((st.st_mode & 0777) == 0600);
}
