#include "cluster/etcd_codec.hpp"

#include <openssl/evp.h>

#include <charconv>

#include "core/random.hpp"

namespace tokenbroker::cluster::codec {

namespace {

error malformed(std::string_view what, std::string_view detail) {
  return make_error(errc::malformed,
                    "etcd " + std::string(what) + ": unreadable answer (" + std::string(detail) + ")");
}

// The gateway's JSON names of Compare.CompareTarget and Compare.CompareResult.
const char* target_name(compare::target t) {
  switch (t) {
    case compare::target::version: return "VERSION";
    case compare::target::create_revision: return "CREATE";
    case compare::target::mod_revision: return "MOD";
    case compare::target::value: return "VALUE";
    case compare::target::lease: return "LEASE";
  }
  return "VERSION";
}

const char* result_name(compare::op o) {
  switch (o) {
    case compare::op::equal: return "EQUAL";
    case compare::op::not_equal: return "NOT_EQUAL";
    case compare::op::greater: return "GREATER";
    case compare::op::less: return "LESS";
  }
  return "EQUAL";
}

json compare_json(const compare& c) {
  json j{{"key", encode_bytes(c.key)},
         {"target", target_name(c.what)},
         {"result", result_name(c.how)}};
  auto n = std::to_string(c.number);
  switch (c.what) {
    case compare::target::version: j["version"] = n; break;
    case compare::target::create_revision: j["create_revision"] = n; break;
    case compare::target::mod_revision: j["mod_revision"] = n; break;
    case compare::target::lease: j["lease"] = n; break;
    case compare::target::value: j["value"] = encode_bytes(c.value); break;
  }
  return j;
}

json op_json(const txn_op& op) {
  switch (op.what) {
    case txn_op::kind::put:
      return json{{"request_put", put_request(op.key, op.value, op.lease)}};
    case txn_op::kind::erase:
      return json{{"request_delete_range", json{{"key", encode_bytes(op.key)}}}};
    case txn_op::kind::get:
      return json{{"request_range", range_request(op.key)}};
  }
  return json::object();
}

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

}  // namespace

std::string encode_bytes(std::string_view raw) { return base64_encode(raw); }

std::optional<std::string> decode_bytes(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the bytes that the padding stands for: drop them.
  std::size_t len = static_cast<std::size_t>(n);
  for (auto it = text.rbegin(); it != text.rend() && *it == '=' && len > 0; ++it) --len;
  out.resize(len);
  return out;
}

std::optional<std::int64_t> int64_field(const json& obj, const char* name) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return 0;
  if (it->is_number_integer()) return it->get<std::int64_t>();
  if (!it->is_string()) return std::nullopt;
  const auto& s = it->get_ref<const std::string&>();
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> header_revision(const json& answer) {
  if (!answer.is_object()) return std::nullopt;
  auto it = answer.find("header");
  if (it == answer.end()) return 0;
  return int64_field(*it, "revision");
}

result<kv> parse_kv(const json& j, std::string_view what) {
  if (!j.is_object()) return malformed(what, "a key-value is not an object");
  kv out;
  auto bytes = [&](const char* name, std::string& into) -> bool {
    auto it = j.find(name);
    if (it == j.end()) return true;  // empty bytes are omitted
    if (!it->is_string()) return false;
    auto raw = decode_bytes(it->get_ref<const std::string&>());
    if (!raw) return false;
    into = std::move(*raw);
    return true;
  };
  if (!j.contains("key") || !bytes("key", out.key)) return malformed(what, "bad key");
  if (!bytes("value", out.value)) return malformed(what, "bad value");
  struct field {
    const char* name;
    std::int64_t* into;
  };
  for (auto [name, into] : {field{"create_revision", &out.create_revision},
                            field{"mod_revision", &out.mod_revision},
                            field{"version", &out.version}, field{"lease", &out.lease}}) {
    auto v = int64_field(j, name);
    if (!v) return malformed(what, std::string("bad ") + name);
    *into = *v;
  }
  return out;
}

json range_request(std::string_view key, std::optional<std::string_view> range_end) {
  json j{{"key", encode_bytes(key)}};
  if (range_end) j["range_end"] = encode_bytes(*range_end);
  return j;
}

json put_request(std::string_view key, std::string_view value, std::int64_t lease) {
  json j{{"key", encode_bytes(key)}, {"value", encode_bytes(value)}};
  if (lease != 0) j["lease"] = std::to_string(lease);
  return j;
}

json txn_request(const std::vector<compare>& compares, const std::vector<txn_op>& success,
                 const std::vector<txn_op>& failure) {
  json j{{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) j["compare"].push_back(compare_json(c));
  for (const auto& op : success) j["success"].push_back(op_json(op));
  for (const auto& op : failure) j["failure"].push_back(op_json(op));
  return j;
}

result<txn_result> parse_txn(const json& answer, const std::vector<txn_op>& success,
                             const std::vector<txn_op>& failure) {
  constexpr std::string_view what = "/v3/kv/txn";
  if (!answer.is_object()) return malformed(what, "not an object");
  txn_result out;
  auto rev = header_revision(answer);
  if (!rev) return malformed(what, "bad header");
  out.revision = *rev;
  if (auto it = answer.find("succeeded"); it != answer.end()) {
    if (!it->is_boolean()) return malformed(what, "bad succeeded");
    out.succeeded = it->get<bool>();
  }
  const auto& ops = out.succeeded ? success : failure;
  static const json no_responses = json::array();
  const json* responses = &no_responses;
  if (auto it = answer.find("responses"); it != answer.end()) responses = &*it;
  if (!responses->is_array() || responses->size() != ops.size())
    return malformed(what, "responses do not match the branch");
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].what != txn_op::kind::get) continue;
    const json& r = (*responses)[i];
    auto range = r.find("response_range");
    if (range == r.end() || !range->is_object()) return malformed(what, "missing response_range");
    auto kvs = range->find("kvs");
    if (kvs == range->end() || (kvs->is_array() && kvs->empty())) {
      out.gets.emplace_back(std::nullopt);
      continue;
    }
    if (!kvs->is_array()) return malformed(what, "bad kvs");
    auto record = parse_kv(kvs->front(), what);
    if (!record) return record.error();
    out.gets.emplace_back(std::move(*record));
  }
  return out;
}

etcd_failure classify(std::string_view what, int status, int grpc_code, std::string_view message) {
  std::string text = "etcd " + std::string(what) + ": " +
                     (message.empty() ? "HTTP " + std::to_string(status) : std::string(message));
  etcd_failure f;
  // gRPC codes: 4 DeadlineExceeded, 5 NotFound, 7 PermissionDenied, 8 ResourceExhausted,
  // 14 Unavailable, 16 Unauthenticated. etcd reuses some for unrelated errors, so the message
  // decides where it is specific.
  // "user name is empty": we sent no token (etcd turned authentication on since we looked).
  if (contains(message, "invalid auth token") || contains(message, "revision of auth store is old") ||
      contains(message, "user name is empty")) {
    f.err = make_error(errc::unauthorized, text);
    f.token_refused = true;
  } else if (contains(message, "lease not found") || grpc_code == 5) {
    f.err = make_error(errc::not_found, text);
  } else if (contains(message, "authentication failed") || contains(message, "permission denied") || grpc_code == 7 || grpc_code == 16) {
    f.err = make_error(errc::unauthorized, text);
  } else if (grpc_code == 4 || grpc_code == 8 || grpc_code == 14 || status >= 500 ||
             contains(message, "request timed out") || contains(message, "no leader") ||
             contains(message, "leader changed") || contains(message, "too many requests")) {
    f.err = make_error(errc::unavailable, text);
  } else {
    f.err = make_error(errc::refused, text);
  }
  return f;
}

etcd_failure failure_from_body(std::string_view what, int status, std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    auto e = j.find("error");
    if (e != j.end() && e->is_string()) {
      std::string message = e->get<std::string>();
      if (auto m = j.find("message"); m != j.end() && m->is_string() && message.empty())
        message = m->get<std::string>();
      int code = 0;
      if (auto c = j.find("code"); c != j.end() && c->is_number_integer()) code = c->get<int>();
      return classify(what, status, code, message);
    }
    if (e != j.end() && e->is_object()) {
      std::string message = e->value("message", std::string{});
      int code = 0;
      if (auto c = e->find("grpc_code"); c != e->end() && c->is_number_integer())
        code = c->get<int>();
      return classify(what, status, code, message);
    }
  }
  etcd_failure f;
  std::string text = "etcd " + std::string(what) + ": HTTP " + std::to_string(status);
  f.err = status >= 500 ? make_error(errc::unavailable, text) : make_http_error(status, text);
  return f;
}

}  // namespace tokenbroker::cluster::codec
