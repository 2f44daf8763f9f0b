#include "http/form.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker::http;

TEST_CASE("form_encodes_php_style_arrays_and_reserved_characters") {
  form f;
  f.add("client_id", "abc").add("nonce", "a b&c=d").add_array("scope", {"all", "x/y"});
  CHECK(f.encode() == "client_id=abc&nonce=a%20b%26c%3Dd&scope%5B%5D=all&scope%5B%5D=x%2Fy");
}

TEST_CASE("form_round_trips_and_reads_plus_as_space") {
  auto f = form::parse("a=1&scope%5B%5D=all&scope[]=more&b=x+y%21&empty=");
  REQUIRE(f);
  CHECK(f->get("a") == "1");
  CHECK(f->get("b") == "x y!");
  CHECK(f->get("empty") == "");
  CHECK(f->get_all("scope[]") == std::vector<std::string>{"all", "more"});
  CHECK_FALSE(f->get("missing"));
}

TEST_CASE("form_rejects_malformed_escapes") {
  CHECK_FALSE(form::parse("a=%4"));
  CHECK_FALSE(form::parse("a=%zz"));
  CHECK_FALSE(url_decode("%"));
}
