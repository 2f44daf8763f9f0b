// ${VAR} in configuration paths, limited to the directories systemd hands a service.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace tokenbroker::config {

/// Looks up an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

/// The process environment (std::getenv).
std::optional<std::string> process_env(std::string_view name);

/// Replaces each `${NAME}` in `path` with the variable's value. NAME must be one of the variables
/// systemd sets for a unit's directories (CREDENTIALS_DIRECTORY, RUNTIME_DIRECTORY,
/// STATE_DIRECTORY, CONFIGURATION_DIRECTORY); any other, an unset or empty one, or a `$` not
/// followed by `{NAME}`, is an error naming the variable.
result<std::string> expand_path(std::string_view path, const env_lookup& env = process_env);

}  // namespace tokenbroker::config
