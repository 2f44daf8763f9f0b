#include "privicore/ws_message.hpp"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

using namespace tokenbroker;
using namespace tokenbroker::privicore;

TEST_CASE("join_ack_per_off_example_is_recognised_with_channel_and_correlation") {
  auto m = parse_ws_message(R"({"correlationId":"unique-correlation-id","status":200,
      "data":{"channelId":"019735db-f8f7-6c08-c893-8f3a6f44a244",
              "message":"Successfully joined profile channel."}})");
  auto* ack = std::get_if<join_ack>(&m);
  REQUIRE(ack != nullptr);
  CHECK(ack->channel_id == "019735db-f8f7-6c08-c893-8f3a6f44a244");
  CHECK(ack->correlation_id == "unique-correlation-id");
}

TEST_CASE("join_ack_per_gde_example_without_correlation_is_recognised") {
  auto m = parse_ws_message(R"({"status":200,"data":{"channelId":"chn-1"}})");
  REQUIRE(std::holds_alternative<join_ack>(m));
  CHECK(std::get<join_ack>(m).correlation_id.empty());
}

TEST_CASE("status_200_without_channel_id_is_ignored") {
  CHECK(std::holds_alternative<ignored_message>(parse_ws_message(R"({"status":200,"data":{}})")));
  CHECK(std::holds_alternative<ignored_message>(
      parse_ws_message(R"({"status":200,"data":{"channelId":""}})")));
}

TEST_CASE("non_200_status_or_top_level_error_is_a_join_failure") {
  auto m = parse_ws_message(R"({"status":401,"data":{"message":"invalid token"}})");
  REQUIRE(std::holds_alternative<join_failed>(m));
  CHECK(std::get<join_failed>(m).status == 401);
  CHECK(std::get<join_failed>(m).message == "invalid token");
  auto e = parse_ws_message(R"({"error":"unauthorized"})");
  REQUIRE(std::holds_alternative<join_failed>(e));
  CHECK(std::get<join_failed>(e).status == 0);
  CHECK(std::get<join_failed>(e).message == "unauthorized");
}

TEST_CASE("command_acks_with_status_1_2_3_are_parsed_with_body") {
  for (int status : {1, 2, 3}) {
    auto m = parse_ws_message(
        R"({"data":{"type":"X-DPT-CAB-ID","id":"23f7978a","command_status":)" +
        std::to_string(status) + R"(,"body":"Command completed successfully","output_type":0}})");
    auto* ack = std::get_if<command_ack>(&m);
    REQUIRE(ack != nullptr);
    CHECK(ack->id == "23f7978a");
    CHECK(ack->command_status == status);
    CHECK(ack->body == "Command completed successfully");
  }
}

TEST_CASE("command_ack_null_body_becomes_empty_and_object_body_becomes_json_text") {
  auto n = parse_ws_message(R"({"data":{"type":"X-DPT-CAB-ID","id":"c","command_status":2,
      "body":null}})");
  REQUIRE(std::holds_alternative<command_ack>(n));
  CHECK(std::get<command_ack>(n).body.empty());
  auto o = parse_ws_message(R"({"data":{"type":"X-DPT-CAB-ID","id":"c","command_status":3,
      "body":{"reason":"x"}}})");
  CHECK(std::get<command_ack>(o).body == R"({"reason":"x"})");
}

TEST_CASE("double_encoded_data_is_accepted") {
  auto m = parse_ws_message(
      R"({"data":"{\"type\":\"X-DPT-CAB-ID\",\"id\":\"c9\",\"command_status\":2}"})");
  REQUIRE(std::holds_alternative<command_ack>(m));
  CHECK(std::get<command_ack>(m).id == "c9");
}

TEST_CASE("other_types_keepalives_and_garbage_are_ignored") {
  for (const char* text :
       {R"({"data":{"type":"X-DPT-CAB-REQUEST-ID","id":"r1","command_status":2}})",
        R"({"data":{"type":"STREAM-READY","requestId":"r1","streamUrl":"https://x"}})",
        R"({"type":"ping"})", R"({})", "", "not json", "[1,2]", R"("text")",
        R"({"data":{"type":"X-DPT-CAB-ID","command_status":2}})",
        R"({"data":{"type":"X-DPT-CAB-ID","id":"c"}})"}) {
    CAPTURE(text);
    CHECK(std::holds_alternative<ignored_message>(parse_ws_message(text)));
  }
}

TEST_CASE("join_message_carries_token_and_correlation_inside_data_and_at_top_level") {
  auto frame = build_join_message(secret{"pt-1"}, "corr-1");
  auto j = nlohmann::json::parse(frame.reveal());
  CHECK(j["action"] == "joinChannel");
  CHECK(j["data"]["authorizationToken"] == "pt-1");
  CHECK(j["data"]["correlationId"] == "corr-1");
  CHECK(j["correlationId"] == "corr-1");
  CHECK(j.size() == 3);
  CHECK(j["data"].size() == 2);
}
