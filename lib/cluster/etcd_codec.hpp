// The JSON of etcd's v3 gateway, both ways, as pure functions: base64 keys and values, int64s as
// strings that proto3 omits when zero, transactions, and the gateway's error bodies.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd_client.hpp"

namespace tokenbroker::cluster::codec {

using json = nlohmann::json;

/// Standard base64 with padding (what the gateway wants for bytes fields).
std::string encode_bytes(std::string_view raw);
/// The bytes of a base64 field; nullopt when it is not valid base64.
std::optional<std::string> decode_bytes(std::string_view text);

/// An int64 field of `obj`: 0 when absent (proto3 omits zeros), a decimal string or a JSON
/// integer when present; nullopt for anything else.
std::optional<std::int64_t> int64_field(const json& obj, const char* name);
/// `header.revision` of an answer (0 when absent); nullopt when unreadable.
std::optional<std::int64_t> header_revision(const json& answer);

/// One KeyValue message; errc::malformed naming `what` when a field is unreadable.
result<kv> parse_kv(const json& j, std::string_view what);

/// A RangeRequest for `key`, or for every key from `key` up to `range_end` when given.
json range_request(std::string_view key, std::optional<std::string_view> range_end = {});
json put_request(std::string_view key, std::string_view value, std::int64_t lease);
json txn_request(const std::vector<compare>& compares, const std::vector<txn_op>& success,
                 const std::vector<txn_op>& failure);
/// The TxnResponse to a transaction of these branches (the gets of the branch that ran).
result<txn_result> parse_txn(const json& answer, const std::vector<txn_op>& success,
                             const std::vector<txn_op>& failure);

/// What a gateway error body (unary `{"error":"..","code":N}` or streamed
/// `{"error":{"grpc_code":N,"message":".."}}`) or a watch's cancel reason means for us.
struct etcd_failure {
  error err;
  /// The auth token was refused as invalid or stale: authenticate again and retry once.
  bool token_refused = false;
};

/// Maps etcd's gRPC status and message to our errc: lease not found → not_found, auth failures →
/// unauthorized, unavailable/timeouts/no leader → unavailable, other refusals → refused.
/// `what` names the endpoint path ("/v3/kv/range"); `status` is the HTTP status (0: in-stream).
etcd_failure classify(std::string_view what, int status, int grpc_code, std::string_view message);
/// Reads a gateway error body and classifies it; an unreadable body becomes an HTTP error
/// (unavailable for 5xx).
etcd_failure failure_from_body(std::string_view what, int status, std::string_view body);

}  // namespace tokenbroker::cluster::codec
