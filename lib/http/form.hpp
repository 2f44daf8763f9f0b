// application/x-www-form-urlencoded bodies and query strings, including PHP-style `name[]` arrays
// (PROTOCOL.md §1).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokenbroker::http {

/// Percent-encodes everything except RFC 3986 unreserved characters (space becomes %20).
std::string url_encode(std::string_view s);
/// Decodes %XX and '+' (as space); nullopt on a malformed escape.
std::optional<std::string> url_decode(std::string_view s);

/// Ordered name/value pairs, encoded as `a=1&b=2`.
class form {
 public:
  form& add(std::string_view name, std::string_view value);
  /// Adds `name[]=v` once per value.
  form& add_array(std::string_view name, const std::vector<std::string>& values);
  std::string encode() const;
  bool empty() const noexcept { return fields_.empty(); }

  /// Parses an encoded form or query string; nullopt on malformed escapes.
  static std::optional<form> parse(std::string_view encoded);
  /// The first value of `name`, if present.
  std::optional<std::string> get(std::string_view name) const;
  /// All values of `name` (use "scope[]" for arrays).
  std::vector<std::string> get_all(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& fields() const noexcept {
    return fields_;
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace tokenbroker::http
