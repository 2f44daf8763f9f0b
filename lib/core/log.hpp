// Logging to stderr in text or JSON. Never pass a secret's value: pass the `secret` itself,
// whose formatter prints only a fingerprint.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string_view>

namespace tokenbroker::log {

enum class level { trace, debug, info, warn, error, off };
enum class format { text, json };

/// Parses "trace|debug|info|warn|error|off"; nullopt for anything else.
std::optional<level> parse_level(std::string_view s);
/// Parses "text|json".
std::optional<format> parse_format(std::string_view s);

/// Sets the process-wide threshold and output format.
void configure(level threshold, format fmt);
bool enabled(level l) noexcept;
/// Writes one line (already formatted) at level `l`.
void write(level l, std::string_view message);

template <class... Args>
void at(level l, fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(l)) write(l, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void trace(fmt::format_string<Args...> f, Args&&... args) {
  at(level::trace, f, std::forward<Args>(args)...);
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  at(level::debug, f, std::forward<Args>(args)...);
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  at(level::info, f, std::forward<Args>(args)...);
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  at(level::warn, f, std::forward<Args>(args)...);
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  at(level::error, f, std::forward<Args>(args)...);
}

}  // namespace tokenbroker::log
