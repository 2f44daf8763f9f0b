#include "config/path_vars.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace tokenbroker::config;

namespace {

env_lookup fake_env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("systemd_directory_variables_are_expanded_anywhere_in_a_path") {
  auto env = fake_env({{"CREDENTIALS_DIRECTORY", "/run/credentials/tokenbroker.service"},
                       {"RUNTIME_DIRECTORY", "/run/tokenbroker"}});
  CHECK(expand_path("${CREDENTIALS_DIRECTORY}/privicore-secret", env).value() ==
        "/run/credentials/tokenbroker.service/privicore-secret");
  CHECK(expand_path("${RUNTIME_DIRECTORY}/tb.sock", env).value() == "/run/tokenbroker/tb.sock");
  CHECK(expand_path("/etc/tokenbroker/state.key", env).value() == "/etc/tokenbroker/state.key");
  CHECK(expand_path("${RUNTIME_DIRECTORY}/${RUNTIME_DIRECTORY}", env).value() ==
        "/run/tokenbroker//run/tokenbroker");
}

TEST_CASE("unset_unknown_or_malformed_variables_are_errors_that_name_the_variable") {
  auto env = fake_env(
      {{"HOME", "/root"}, {"STATE_DIRECTORY", ""}, {"CONFIGURATION_DIRECTORY", "/etc/a:/etc/b"}});
  auto unset = expand_path("${CREDENTIALS_DIRECTORY}/x", env);
  REQUIRE_FALSE(unset.has_value());
  CHECK(unset.error().message.find("${CREDENTIALS_DIRECTORY} is not set") != std::string::npos);
  auto empty = expand_path("${STATE_DIRECTORY}/x", env);
  REQUIRE_FALSE(empty.has_value());
  CHECK(empty.error().message.find("STATE_DIRECTORY") != std::string::npos);
  // Any other variable is refused even when set: the caller's environment must not pick paths.
  auto other = expand_path("${HOME}/secret", env);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().message.find("${HOME} is not supported") != std::string::npos);
  CHECK_FALSE(expand_path("${CONFIGURATION_DIRECTORY}/x", env).has_value());
  CHECK_FALSE(expand_path("$CREDENTIALS_DIRECTORY/x", env).has_value());
  CHECK_FALSE(expand_path("/a/${CREDENTIALS_DIRECTORY", env).has_value());
  CHECK_FALSE(expand_path("/a/$", env).has_value());
}
