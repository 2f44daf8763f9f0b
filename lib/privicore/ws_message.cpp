#include "privicore/ws_message.hpp"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "privicore/json_fields.hpp"

namespace tokenbroker::privicore {
namespace {

using json = nlohmann::json;

const json* member(const json& j, const char* key) { return json_fields::field(j, {key}); }

std::optional<int> small_int(const json* v) {
  auto n = json_fields::integer(v);
  if (!n || *n < -1000000 || *n > 1000000) return std::nullopt;
  return static_cast<int>(*n);
}

}  // namespace

ws_message parse_ws_message(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ignored_message{};
  const json* data = member(j, "data");
  // Some proxies forward the payload as a JSON string: accept it double-encoded too.
  json decoded;
  if (data && data->is_string()) {
    decoded = json::parse(data->get_ref<const std::string&>(), nullptr, false);
    data = decoded.is_object() ? &decoded : nullptr;
  }
  const json& payload = data ? *data : j;  // tolerate an ack that is not wrapped in `data`

  if (const json* type = member(payload, "type"); type && type->is_string()) {
    if (type->get_ref<const std::string&>() != "X-DPT-CAB-ID") return ignored_message{};
    auto id = json_fields::string_field(payload, {"id"});
    auto status = small_int(member(payload, "command_status"));
    if (!id || !status) return ignored_message{};
    return command_ack{std::move(*id), *status, json_fields::text(member(payload, "body"), 1000)};
  }

  const json* status = member(j, "status");
  auto code = status && status->is_number_integer() ? small_int(status) : std::nullopt;
  if (code == 200) {
    auto channel = data ? json_fields::string_field(*data, {"channelId"}) : std::nullopt;
    if (!channel) return ignored_message{};
    return join_ack{std::move(*channel), json_fields::optional_string(j, {"correlationId"})};
  }
  if (code) {
    const json* message = data ? member(*data, "message") : nullptr;
    if (!message) message = json_fields::field(j, {"message", "error"});
    return join_failed{*code, json_fields::text(message, 200)};
  }
  if (const json* err = member(j, "error"); err && err->is_string())
    return join_failed{0, json_fields::text(err, 200)};
  return ignored_message{};
}

secret build_join_message(const secret& token, std::string_view correlation_id) {
  json j{{"action", "joinChannel"},
         {"correlationId", correlation_id},
         {"data", {{"authorizationToken", token.reveal()}, {"correlationId", correlation_id}}}};
  secret out{j.dump(-1, ' ', false, json::error_handler_t::replace)};
  // The json tree holds a copy of the token: overwrite it before the tree is freed.
  auto& held = j["data"]["authorizationToken"].get_ref<std::string&>();
  OPENSSL_cleanse(held.data(), held.size());
  return out;
}

}  // namespace tokenbroker::privicore
