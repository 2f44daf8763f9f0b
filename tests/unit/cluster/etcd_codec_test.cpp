// The etcd gateway's JSON: bytes, proto3's omitted zeros, transactions and error bodies.
#include <doctest/doctest.h>

#include "cluster/etcd_codec.hpp"

using namespace tokenbroker;
using namespace tokenbroker::cluster;
using codec::json;

TEST_CASE("prefix_end is the smallest key above every key with the prefix") {
  CHECK(prefix_end("a/") == "a0");
  CHECK(prefix_end("ab") == "ac");
  CHECK(prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(prefix_end(std::string("a\xfe\xff", 3)) == std::string("a\xff", 2));
  CHECK(prefix_end(std::string("\xff\xff", 2)) == std::string(1, '\0'));
  CHECK(prefix_end("") == std::string(1, '\0'));
}

TEST_CASE("bytes round-trip through base64, and invalid base64 is refused") {
  for (std::string raw : {std::string{}, std::string("a"), std::string("ab"), std::string("abc"),
                          std::string("\x00\xff\x80\n", 4)}) {
    auto text = codec::encode_bytes(raw);
    auto back = codec::decode_bytes(text);
    REQUIRE(back.has_value());
    CHECK(*back == raw);
  }
  CHECK(codec::encode_bytes("foo") == "Zm9v");
  CHECK_FALSE(codec::decode_bytes("Zm9").has_value());
  CHECK_FALSE(codec::decode_bytes("Zm9!").has_value());
}

TEST_CASE("int64 fields: strings or numbers, absent means zero, anything else is unreadable") {
  auto j = json::parse(R"({"a":"42","b":7,"c":"-3","d":"x","e":true,"f":"9223372036854775807"})");
  CHECK(codec::int64_field(j, "a") == 42);
  CHECK(codec::int64_field(j, "b") == 7);
  CHECK(codec::int64_field(j, "c") == -3);
  CHECK(codec::int64_field(j, "missing") == 0);
  CHECK_FALSE(codec::int64_field(j, "d").has_value());
  CHECK_FALSE(codec::int64_field(j, "e").has_value());
  CHECK(codec::int64_field(j, "f") == INT64_MAX);
}

TEST_CASE("a key-value with omitted defaults reads as zeros and an empty value") {
  auto r = codec::parse_kv(json::parse(R"({"key":"Zm9v","create_revision":"5","mod_revision":"6"})"),
                           "/v3/kv/range");
  REQUIRE(r.has_value());
  CHECK(r->key == "foo");
  CHECK(r->value.empty());
  CHECK(r->create_revision == 5);
  CHECK(r->mod_revision == 6);
  CHECK(r->version == 0);
  CHECK(r->lease == 0);
  auto bad = codec::parse_kv(json::parse(R"({"key":"%%%%"})"), "/v3/kv/range");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == errc::malformed);
  CHECK(bad.error().message.find("/v3/kv/range") != std::string::npos);
  CHECK_FALSE(codec::parse_kv(json::parse(R"({"value":"Zm9v"})"), "x").has_value());
}

TEST_CASE("a transaction's request, and its answer with omitted succeeded and responses") {
  std::vector<compare> cmp{{"k", compare::target::create_revision, compare::op::equal, 0, {}},
                           {"k", compare::target::lease, compare::op::not_equal, 12, {}}};
  std::vector<txn_op> ok{{txn_op::kind::put, "k", "v", 12}, {txn_op::kind::get, "k", {}, 0}};
  std::vector<txn_op> no{{txn_op::kind::get, "k", {}, 0}, {txn_op::kind::erase, "k", {}, 0}};
  auto req = codec::txn_request(cmp, ok, no);
  CHECK(req["compare"][0] == json::parse(
      R"({"key":"aw==","target":"CREATE","result":"EQUAL","create_revision":"0"})"));
  CHECK(req["compare"][1]["target"] == "LEASE");
  CHECK(req["compare"][1]["result"] == "NOT_EQUAL");
  CHECK(req["compare"][1]["lease"] == "12");
  CHECK(req["success"][0] == json::parse(R"({"request_put":{"key":"aw==","value":"dg==","lease":"12"}})"));
  CHECK(req["failure"][1] == json::parse(R"({"request_delete_range":{"key":"aw=="}})"));

  // Failed: "succeeded" omitted; the failure branch's get found nothing ("kvs" omitted).
  auto failed = codec::parse_txn(json::parse(
      R"({"header":{"revision":"9"},"responses":[{"response_range":{"header":{}}},
          {"response_delete_range":{}}]})"), ok, no);
  REQUIRE(failed.has_value());
  CHECK_FALSE(failed->succeeded);
  CHECK(failed->revision == 9);
  REQUIRE(failed->gets.size() == 1);
  CHECK_FALSE(failed->gets[0].has_value());

  auto won = codec::parse_txn(json::parse(
      R"({"header":{"revision":"10"},"succeeded":true,"responses":[{"response_put":{}},
          {"response_range":{"kvs":[{"key":"aw==","value":"dg==","lease":"12"}],"count":"1"}}]})"),
      ok, no);
  REQUIRE(won.has_value());
  CHECK(won->succeeded);
  REQUIRE(won->gets.size() == 1);
  REQUIRE(won->gets[0].has_value());
  CHECK(won->gets[0]->value == "v");
  CHECK(won->gets[0]->lease == 12);

  // Empty branches: no responses at all.
  auto empty = codec::parse_txn(json::parse(R"({"header":{"revision":"3"}})"), {}, {});
  REQUIRE(empty.has_value());
  CHECK_FALSE(empty->succeeded);
  auto mismatch = codec::parse_txn(json::parse(R"({"succeeded":true,"responses":[]})"), ok, no);
  REQUIRE_FALSE(mismatch.has_value());
  CHECK(mismatch.error().code == errc::malformed);
}

TEST_CASE("gateway errors map to our errc, in the unary and the streamed form") {
  auto f = [](int status, const char* body) { return codec::failure_from_body("/p", status, body); };
  auto lease = f(404, R"({"error":"etcdserver: requested lease not found","code":5,"message":"x"})");
  CHECK(lease.err.code == errc::not_found);
  CHECK(lease.err.message == "etcd /p: etcdserver: requested lease not found");
  auto token = f(401, R"({"error":"etcdserver: invalid auth token","code":16})");
  CHECK(token.err.code == errc::unauthorized);
  CHECK(token.token_refused);
  auto password = f(400, R"({"error":"etcdserver: authentication failed, invalid user ID or password","code":3})");
  CHECK(password.err.code == errc::unauthorized);
  CHECK_FALSE(password.token_refused);
  CHECK(f(400, R"({"error":"etcdserver: user name is empty","code":3})").err.code == errc::unauthorized);
  CHECK(f(403, R"({"error":"etcdserver: permission denied","code":7})").err.code == errc::unauthorized);
  CHECK(f(503, R"({"error":"etcdserver: request timed out","code":14})").err.code == errc::unavailable);
  CHECK(f(200, R"({"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}})")
            .err.code == errc::unavailable);
  CHECK(f(400, R"({"error":"etcdserver: mvcc: required revision has been compacted","code":11})")
            .err.code == errc::refused);
  CHECK(f(502, "<html>bad gateway</html>").err.code == errc::unavailable);
  auto odd = f(404, "not json");
  CHECK(odd.err.code == errc::http_status);
  CHECK(odd.err.status == 404);
}
