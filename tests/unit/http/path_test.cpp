#include <doctest/doctest.h>

#include "http/path.hpp"

using tokenbroker::http::clean_proxy_path;
using tokenbroker::http::valid_query;

TEST_CASE("clean_proxy_path_keeps_ordinary_paths_as_they_came") {
  CHECK(clean_proxy_path("").value() == "/");
  CHECK(clean_proxy_path("/").value() == "/");
  CHECK(clean_proxy_path("/data-token/echo").value() == "/data-token/echo");
  CHECK(clean_proxy_path("/dir/").value() == "/dir/");
  CHECK(clean_proxy_path("/a%20b/c~d/e.f/..g/h..").value() == "/a%20b/c~d/e.f/..g/h..");
  CHECK(clean_proxy_path("/user@host:1/x;v=1/%2Efile").value() == "/user@host:1/x;v=1/%2Efile");
}

TEST_CASE("clean_proxy_path_refuses_every_way_out") {
  for (const char* p :
       {"x", "/..", "/../x", "/a/../b", "/a/..", "/.", "/./a", "/%2e%2e/x", "/%2E%2e", "/.%2e/x",
        "/%2e./x", "/%2e", "/a/%2F/b", "/a%2fb", "/a%5cb", "/a\\b", "//x", "/a//b", "/..;/x",
        "/.;x/y", "/%2e%2e;a/x", "/%252e%252e/x", "/a%25b", "/a%00", "/a%0d%0a", "/a%7f", "/a%",
        "/a%2", "/a%zz", "/a b", "/a\tb", "/a\"b", "/a<b", "/a{b}", "/a|b", "/a^b", "/a`b",
        "/caf\xc3\xa9", "/a#b", "/a?b"}) {
    CAPTURE(p);
    auto r = clean_proxy_path(p);
    CHECK_FALSE(r.has_value());
  }
}

TEST_CASE("valid_query_accepts_rfc3986_queries_only") {
  CHECK(valid_query(""));
  CHECK(valid_query("a=1&b=x%20y&c=/path?d=e:f@g"));
  CHECK_FALSE(valid_query("a=%zz"));
  CHECK_FALSE(valid_query("a=%2"));
  CHECK_FALSE(valid_query("a b"));
  CHECK_FALSE(valid_query("a=\"b\""));
  CHECK_FALSE(valid_query("a=<b>"));
  CHECK_FALSE(valid_query("a#b"));
}
