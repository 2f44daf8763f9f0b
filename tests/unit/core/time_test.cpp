#include "core/time.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker;
using namespace std::chrono;

TEST_CASE("timestamps_accept_offset_and_z_forms") {
  auto a = parse_timestamp("2026-02-21T15:33:44+00:00");
  auto b = parse_timestamp("2026-02-21T15:33:44Z");
  auto c = parse_timestamp("2026-02-21T16:33:44+01:00");
  auto d = parse_timestamp("2026-02-21T15:33:44.123456Z");
  auto e = parse_timestamp("2026-02-21T10:33:44-0500");
  REQUIRE(a);
  CHECK(a == b);
  CHECK(a == c);
  CHECK(a == d);
  CHECK(a == e);
  CHECK(format_timestamp(*a) == "2026-02-21T15:33:44Z");
}

TEST_CASE("timestamps_reject_garbage") {
  CHECK_FALSE(parse_timestamp(""));
  CHECK_FALSE(parse_timestamp("2026-02-21"));
  CHECK_FALSE(parse_timestamp("2026-02-21T15:33:44"));  // no zone
  CHECK_FALSE(parse_timestamp("2026-13-21T15:33:44Z"));
  CHECK_FALSE(parse_timestamp("2026-02-30T15:33:44Z"));
  CHECK_FALSE(parse_timestamp("2026-02-21T15:33:44Zjunk"));
  CHECK_FALSE(parse_timestamp("1700000000"));
}

TEST_CASE("durations_parse_units") {
  CHECK(parse_duration("90s") == milliseconds{90000});
  CHECK(parse_duration("5m") == milliseconds{300000});
  CHECK(parse_duration("250ms") == milliseconds{250});
  CHECK(parse_duration("2h") == hours{2});
  CHECK(parse_duration("30") == seconds{30});
  CHECK_FALSE(parse_duration("5 minutes"));
  CHECK_FALSE(parse_duration("-1s"));
  CHECK_FALSE(parse_duration(""));
}

// Found by fuzz_config: a huge count overflowed the conversion to milliseconds.
TEST_CASE("durations_beyond_ten_years_are_refused_not_overflowed") {
  CHECK(parse_duration("3650d") == hours{24 * 3650});
  CHECK(parse_duration(std::to_string(max_duration.count()) + "ms") == max_duration);
  CHECK_FALSE(parse_duration(std::to_string(max_duration.count() + 1) + "ms"));
  CHECK_FALSE(parse_duration("3883139815726120959h"));
  CHECK_FALSE(parse_duration("9223372036854775807d"));
  CHECK_FALSE(parse_duration("99999999999999999999s"));  // beyond int64 itself
}

TEST_CASE("retry_after_accepts_seconds_and_http_dates") {
  auto now = *parse_timestamp("1994-11-06T08:49:00Z");
  CHECK(parse_retry_after("120", now) == seconds{120});
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == seconds{37});
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now) == seconds{0});
  CHECK_FALSE(parse_retry_after("soon", now));
}
