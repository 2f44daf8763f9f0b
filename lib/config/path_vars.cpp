#include "config/path_vars.hpp"

#include <array>
#include <cstdlib>

namespace tokenbroker::config {
namespace {

// Only what systemd provides: expanding arbitrary variables would let the environment of
// whoever starts the daemon redirect where secrets are read from.
constexpr std::array<std::string_view, 4> allowed = {"CREDENTIALS_DIRECTORY", "RUNTIME_DIRECTORY",
                                                     "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY"};

}  // namespace

std::optional<std::string> process_env(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (!v) return std::nullopt;
  return std::string(v);
}

result<std::string> expand_path(std::string_view path, const env_lookup& env) {
  std::string out;
  for (std::size_t i = 0; i < path.size();) {
    if (path[i] != '$') {
      out += path[i++];
      continue;
    }
    auto close = path.find('}', i);
    if (i + 1 >= path.size() || path[i + 1] != '{' || close == std::string_view::npos)
      return make_error(errc::invalid_argument, "\"$\" must start a ${NAME} variable");
    auto name = path.substr(i + 2, close - i - 2);
    bool known = false;
    for (auto a : allowed) known = known || a == name;
    if (!known)
      return make_error(errc::invalid_argument,
                        "${" + std::string(name) +
                            "} is not supported (only CREDENTIALS_DIRECTORY, "
                            "RUNTIME_DIRECTORY, STATE_DIRECTORY and CONFIGURATION_DIRECTORY)");
    auto value = env(name);
    if (!value || value->empty())
      return make_error(
          errc::invalid_argument,
          "${" + std::string(name) + "} is not set (systemd sets it for the service)");
    // systemd joins several directories with ':'; a path can only name one.
    if (value->find(':') != std::string::npos)
      return make_error(errc::invalid_argument,
                        "${" + std::string(name) + "} holds several directories");
    out += *value;
    i = close + 1;
  }
  return out;
}

}  // namespace tokenbroker::config
