#include "core/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace tokenbroker::log {
namespace {

std::atomic<level> threshold_{level::info};
std::atomic<format> format_{format::text};

constexpr std::string_view name(level l) {
  switch (l) {
    case level::trace: return "trace";
    case level::debug: return "debug";
    case level::info: return "info";
    case level::warn: return "warn";
    case level::error: return "error";
    case level::off: return "off";
  }
  return "?";
}

std::string timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::optional<level> parse_level(std::string_view s) {
  for (auto l : {level::trace, level::debug, level::info, level::warn, level::error, level::off})
    if (s == name(l)) return l;
  return std::nullopt;
}

std::optional<format> parse_format(std::string_view s) {
  if (s == "text") return format::text;
  if (s == "json") return format::json;
  return std::nullopt;
}

void configure(level t, format f) {
  threshold_ = t;
  format_ = f;
}

bool enabled(level l) noexcept { return l != level::off && l >= threshold_.load(); }

void write(level l, std::string_view message) {
  std::string line;
  if (format_.load() == format::json) {
    nlohmann::json j{{"ts", timestamp()}, {"level", name(l)}, {"msg", message}};
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = fmt::format("{} {:<5} {}", timestamp(), name(l), message);
  }
  line += '\n';
  // One fwrite per line keeps lines whole when several processes share stderr.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace tokenbroker::log
