// Header field lists: values of the form `#element` (RFC 9110 §5.6.1), as Connection, Prefer
// and Transfer-Encoding carry them.
#pragma once

#include <string_view>

namespace tokenbroker::http {

/// `v` without leading and trailing optional white space (spaces and tabs).
constexpr std::string_view trim_ows(std::string_view v) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

/// Calls `fn(element)` for each non-empty, trimmed, comma-separated element of `v`, in order,
/// while it returns true. Returns false when `fn` stopped the walk.
template <class Fn>
bool for_each_element(std::string_view v, Fn fn) {
  while (!v.empty()) {
    auto comma = v.find(',');
    auto item = trim_ows(v.substr(0, comma));
    if (!item.empty() && !fn(item)) return false;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
  return true;
}

}  // namespace tokenbroker::http
