// Reading secret files with the permission checks a token broker owes its users.
#pragma once

#include <optional>
#include <string>

#include "core/secret.hpp"

namespace tokenbroker::config {

struct secret_read {
  std::optional<secret> value;  // nullopt: unusable, see problem
  std::string problem;          // why it failed, or a warning when value is set
};

/// Why a secret file with `mode` may not be trusted (group or others may read or write it), or
/// "" when its mode is fine.
std::string permission_problem(const std::string& path, unsigned mode);

/// `problem` (from permission_problem) as an error under strict permissions: with the setting
/// that turns it into a warning.
std::string permission_error(const std::string& problem);

/// Reads `path` (trailing newlines stripped). A file readable or writable by group/others is an
/// error when `strict`, else a warning. Empty, missing, non-regular or huge files are errors.
secret_read read_secret_file_checked(const std::string& path, bool strict);

}  // namespace tokenbroker::config
