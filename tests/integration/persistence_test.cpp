// Tokens survive restarts and crashes: no re-grant, no password needed, valid tokens at once.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("a_restarted_broker_serves_its_saved_token_without_a_new_grant") {
  for (int sig : {SIGTERM, SIGKILL}) {
    CAPTURE(sig);
    sim_fixture sim(sim_flags_for_broker());
    broker_fixture b(sim);
    auto before = b.token();
    auto state_file = b.dir().file("state/privicore.state");
    REQUIRE(std::filesystem::exists(state_file));
    struct stat st{};
    ::stat(state_file.c_str(), &st);
    CHECK((st.st_mode & 0777) == 0600);
    auto raw = slurp(state_file);
    CHECK(raw.find(before) == std::string::npos);  // encrypted at rest

    b.restart(sig);
    auto after = b.token();
    CHECK(after == before);
    CHECK(sim.check(after)["valid"] == true);
    CHECK(sim.stats()["grants"] == 1);
    CHECK(sim.stats()["authentications"] == 1);
    // The refresh token persisted too: a refresh after the restart works with it.
    REQUIRE(b.call("POST", "/v1/credentials/privicore/refresh").status == 200);
    CHECK(sim.stats()["refreshes"] == 1);
    CHECK(sim.stats()["refresh_rejected"] == 0);
  }
}

TEST_CASE("a_restart_continues_from_the_newest_rotated_refresh_token") {
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;
  o.profile_login = false;  // a lost refresh token could not be recovered: the test would fail
  broker_fixture b(sim, o);
  process ctl(process_options{{bin_path("tokenbrokerctl"), "--socket", b.socket_path(), "login",
                               "privicore", "--username", test_username},
                              {}, std::string(test_password) + "\n", b.dir().file("ctl.log")});
  REQUIRE(ctl.wait_exit(30s).has_value());
  for (int i = 0; i < 3; ++i) REQUIRE(b.call("POST", "/v1/credentials/privicore/refresh").status == 200);
  b.restart(SIGKILL);
  REQUIRE(b.call("POST", "/v1/credentials/privicore/refresh").status == 200);
  CHECK(sim.stats()["refreshes"] == 4);
  CHECK(sim.stats()["refresh_rejected"] == 0);
  CHECK(b.state() == "fresh");
}

TEST_CASE("corrupt_state_is_kept_aside_and_the_credential_regrants") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  b.token();
  auto state_file = b.dir().file("state/privicore.state");
  b.restart(SIGTERM);  // writes nothing new; now corrupt the file and start again
  {
    auto raw = slurp(state_file);
    raw[raw.size() - 3] ^= 0x5a;
    std::ofstream(state_file, std::ios::binary) << raw;
  }
  b.restart(SIGTERM);
  auto token = b.token();
  CHECK(sim.check(token)["valid"] == true);
  CHECK(sim.stats()["grants"] == 2);
  bool kept = false;
  for (auto& e : std::filesystem::directory_iterator(b.dir().file("state")))
    kept = kept || e.path().filename().string().starts_with("privicore.state.bad-");
  CHECK(kept);
  CHECK(b.proc().stderr_text().find("privicore.state") != std::string::npos);
}
