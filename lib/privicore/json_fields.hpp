// Reading fields out of Privicore's JSON, where several names or types may carry one value
// (PROTOCOL.md §7.4). Lookups never throw; absent and null are the same.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tokenbroker::privicore::json_fields {

using json = nlohmann::json;

/// The first of `keys` present and not null in the object `j`; nullptr otherwise.
const json* field(const json& j, std::initializer_list<const char*> keys);

/// The first of `keys` if it is a non-empty string.
std::optional<std::string> string_field(const json& j, std::initializer_list<const char*> keys);

/// string_field, or "" when absent.
std::string optional_string(const json& j, std::initializer_list<const char*> keys);

/// A whole number given as a JSON number or a numeric string.
std::optional<std::int64_t> integer(const json* v);

/// Scopes as an array of strings, or one string separated by commas or spaces.
std::vector<std::string> scope_list(const json* v);

/// A value as text for a reason or body: strings as they are, anything else as JSON; null → "".
/// Sanitized and cut to `max` bytes.
std::string text(const json* v, std::size_t max);

}  // namespace tokenbroker::privicore::json_fields
