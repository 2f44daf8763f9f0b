#include "core/secret.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sstream>

using tokenbroker::secret;

TEST_CASE("secret_formats_as_fingerprint_never_as_value") {
  secret s{"super-secret-token-value"};
  auto text = fmt::format("token {}", s);
  CHECK(text.find("super-secret") == std::string::npos);
  CHECK(text.find("sha256:") != std::string::npos);
  std::ostringstream os;
  os << s;
  CHECK(os.str().find("super-secret") == std::string::npos);
  CHECK(os.str() == "<secret " + s.fingerprint() + ">");
}

TEST_CASE("secret_fingerprint_is_stable_and_distinguishes_values") {
  CHECK(secret{"a"}.fingerprint() == secret{"a"}.fingerprint());
  CHECK(secret{"a"}.fingerprint() != secret{"b"}.fingerprint());
  CHECK(secret{}.fingerprint() == "none");
  CHECK(secret{"a"}.fingerprint().size() == std::string("sha256:").size() + 8);
}

TEST_CASE("secret_compares_by_value_and_moves_out") {
  secret a{"x"}, b{"x"}, c{"y"};
  CHECK(a == b);
  CHECK_FALSE(a == c);
  secret d = std::move(a);
  CHECK(d.reveal() == "x");
  secret e;
  e = std::move(d);
  CHECK(d.empty());
  CHECK(e.reveal() == "x");
}

TEST_CASE("wipe_bytes_overwrites_the_whole_buffer_not_only_what_is_in_use") {
  // A reused buffer held a longer answer before its current, shorter one.
  std::string s(200, 'k');
  s.assign("short");
  const char* storage = s.data();
  const auto room = s.capacity();
  REQUIRE(room >= 200);
  tokenbroker::wipe_bytes(s);
  CHECK(s.empty());
  REQUIRE(s.data() == storage);  // the same storage, still held, now holds no old byte
  CHECK(std::string_view(storage, room).find_first_not_of('\0') == std::string_view::npos);
}
