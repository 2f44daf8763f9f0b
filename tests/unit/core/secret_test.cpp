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
