#include "core/time.hpp"

#include <charconv>
#include <ctime>

namespace tokenbroker {
namespace {

// Reads exactly n digits at s[pos].
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::optional<sys_seconds> parse_timestamp(std::string_view s) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS
  if (s.size() < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return std::nullopt;
  auto Y = digits(s, 0, 4), M = digits(s, 5, 2), D = digits(s, 8, 2);
  auto h = digits(s, 11, 2), m = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (!Y || !M || !D || !h || !m || !sec) return std::nullopt;
  if (*h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  year_month_day ymd{year{*Y}, month{static_cast<unsigned>(*M)}, day{static_cast<unsigned>(*D)}};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  int offset_minutes = 0;
  if (pos == s.size()) return std::nullopt;  // a zone is required
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    auto oh = digits(s, pos, 2);
    if (!oh) return std::nullopt;
    pos += 2;
    if (pos < s.size() && s[pos] == ':') ++pos;
    auto om = digits(s, pos, 2);
    if (!om) return std::nullopt;
    pos += 2;
    if (*oh > 23 || *om > 59) return std::nullopt;
    offset_minutes = sign * (*oh * 60 + *om);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  sys_seconds t = sys_days{ymd} + hours{*h} + minutes{*m} + seconds{*sec};
  return t - minutes{offset_minutes};
}

std::string format_timestamp(sys_seconds t) {
  using namespace std::chrono;
  auto dp = floor<days>(t);
  year_month_day ymd{dp};
  hh_mm_ss hms{t - dp};
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ldZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                static_cast<long>(hms.seconds().count()));
  return buf;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  using namespace std::chrono;
  if (s.empty()) return std::nullopt;
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || n < 0) return std::nullopt;
  std::string_view unit(p, static_cast<std::size_t>(s.data() + s.size() - p));
  std::int64_t unit_ms = 0;
  if (unit == "ms") unit_ms = 1;
  else if (unit.empty() || unit == "s") unit_ms = 1000;
  else if (unit == "m") unit_ms = 60'000;
  else if (unit == "h") unit_ms = 3'600'000;
  else if (unit == "d") unit_ms = 86'400'000;
  else return std::nullopt;
  // Found by fuzz_config: "3883139815726120959h" overflowed the conversion to milliseconds (UB,
  // in practice a negative margin). Nothing here needs more than a few years; clock arithmetic
  // in nanoseconds stays far from overflow below this bound.
  if (n > max_duration.count() / unit_ms) return std::nullopt;
  return milliseconds{n * unit_ms};
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view s, sys_seconds now) {
  using namespace std::chrono;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec == std::errc{} && p == s.data() + s.size()) {
    if (n < 0) return std::nullopt;
    return seconds{n};
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  std::tm tm{};
  std::string copy(s);
  if (!strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) return std::nullopt;
  auto when = sys_seconds{seconds{timegm(&tm)}};
  return when > now ? duration_cast<seconds>(when - now) : seconds{0};
}

}  // namespace tokenbroker
