#include "cluster/etcd_client.hpp"

#include <stdexcept>

#include "cluster/etcd_impl.hpp"
#include "core/log.hpp"

namespace tokenbroker::cluster {

namespace {

http::client_options http_options(const etcd_options& o) {
  http::client_options h;
  h.ca_file = o.ca_file;
  h.cert_file = o.cert_file;
  h.key_file = o.key_file;
  h.verify_tls = o.verify_tls;
  h.connect_timeout = o.timeout;
  h.max_response_body = 64 * 1024 * 1024;  // a prefix read holds every record under it
  return h;
}

error malformed(std::string_view what, std::string_view detail) {
  return make_error(errc::malformed,
                    "etcd " + std::string(what) + ": unreadable answer (" + std::string(detail) + ")");
}

// Failures that say nothing about etcd's answer to this request, only that this endpoint could
// not give one: the next endpoint may.
bool endpoint_failure(errc code) {
  return code == errc::transport || code == errc::timeout || code == errc::tls ||
         code == errc::unavailable;
}

}  // namespace

std::string prefix_end(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last < 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd's convention for "no upper bound")
}

etcd_client::impl::impl(etcd_client& o, net::any_io_executor e, etcd_options opts)
    : owner(o),
      ex(std::move(e)),
      options(std::move(opts)),
      http(ex, http_options(options)),
      tokens(options.endpoints.size()),
      rng(std::random_device{}()) {}

etcd_client::etcd_client(net::any_io_executor ex, etcd_options options) {
  if (options.endpoints.empty()) throw std::runtime_error("etcd: no endpoints configured");
  impl_ = std::make_unique<impl>(*this, std::move(ex), std::move(options));
}

etcd_client::~etcd_client() = default;

void etcd_client::stop() {
  auto& d = *impl_;
  d.stopped = true;
  healthy_ = false;
  for (auto* c : d.streams) {
    boost::system::error_code ignored;
    c->tcp().socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    c->tcp().cancel();
  }
  for (auto* t : d.sleepers) t->cancel();
}

http::request etcd_client::impl::make_request(std::size_t i, std::string_view path,
                                              std::string body, const secret& token) const {
  const auto& ep = options.endpoints[i];
  http::request req{http::verb::post, ep.join(path).target(), 11};
  req.set(http::field::content_type, "application/json");
  // etcd takes the raw token, without a scheme.
  if (!token.empty()) req.set(http::field::authorization, token.reveal());
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

awaitable<result<void>> etcd_client::impl::authenticate(std::size_t i, bool& reached) {
  constexpr std::string_view path = "/v3/auth/authenticate";
  json body{{"name", options.username}, {"password", options.password.reveal()}};
  auto req = make_request(i, path, body.dump(), secret{});
  auto res = co_await http.send(options.endpoints[i], std::move(req), options.timeout);
  if (!res) co_return res.error();
  reached = true;
  if (res->result_int() != 200) {
    auto f = codec::failure_from_body(path, static_cast<int>(res->result_int()), res->body());
    // Authentication is off on that etcd: requests go without a token.
    if (f.err.message.find("authentication is not enabled") != std::string::npos) {
      tokens[i] = secret{};
      co_return result<void>{};
    }
    if (f.err.code == errc::unavailable) reached = false;
    co_return f.err;
  }
  auto j = json::parse(res->body(), nullptr, false);
  auto t = j.is_object() ? j.find("token") : j.end();
  if (!j.is_object() || t == j.end() || !t->is_string() || t->get_ref<const std::string&>().empty())
    co_return malformed(path, "no token");
  tokens[i] = secret{t->get<std::string>()};
  co_return result<void>{};
}

awaitable<result<secret>> etcd_client::impl::token_for(std::size_t i, bool& reached) {
  if (!auth()) co_return secret{};
  if (!tokens[i]) {
    auto a = co_await authenticate(i, reached);
    if (!a) co_return a.error();
  }
  if (!tokens[i]) co_return make_error(errc::unauthorized, "etcd: no auth token");  // raced
  co_return *tokens[i];
}

void etcd_client::impl::forget_token(std::size_t i, const secret& used) {
  if (tokens[i] && *tokens[i] == used) tokens[i].reset();
}

awaitable<result<json>> etcd_client::impl::call_endpoint(std::size_t i, std::string_view path,
                                                         const std::string& body, bool& reached) {
  bool retried_token = false;
  bool retried_transport = false;
  for (;;) {
    reached = false;
    auto token = co_await token_for(i, reached);
    if (!token && token.error().code == errc::transport && !retried_transport) {
      retried_transport = true;
      continue;
    }
    if (!token) co_return token.error();
    auto req = make_request(i, path, body, *token);
    auto res = co_await http.send(options.endpoints[i], std::move(req), options.timeout);
    if (!res) {
      // A pooled connection that etcd closed (a restart) fails once; a fresh one may not.
      if (res.error().code == errc::transport && !retried_transport) {
        retried_transport = true;
        continue;
      }
      co_return res.error();
    }
    reached = true;
    int status = static_cast<int>(res->result_int());
    auto j = json::parse(res->body(), nullptr, false);
    // A streamed RPC (keepalive) reports failures in the body of a 200; a unary one in a non-200.
    bool in_band_error = false;
    if (j.is_object()) {
      auto e = j.find("error");
      in_band_error = e != j.end() && (e->is_object() || (e->is_string() &&
                                                          !e->get_ref<const std::string&>().empty()));
    }
    if (status != 200 || in_band_error) {
      auto f = codec::failure_from_body(path, status, res->body());
      if (f.token_refused && auth() && !retried_token) {
        retried_token = true;
        forget_token(i, *token);
        continue;
      }
      if (f.err.code == errc::unavailable) reached = false;
      co_return f.err;
    }
    if (j.is_discarded() || !j.is_object()) co_return malformed(path, "not a JSON object");
    // In place: json converts to anything, so result<json> cannot tell a value from an error.
    co_return result<json>(boost::system::in_place_value, std::move(j));
  }
}

awaitable<result<json>> etcd_client::impl::call(std::string_view path, const json& body) {
  if (stopped) co_return stopped_error();
  const std::string text = body.dump();
  const std::size_t n = options.endpoints.size();
  std::string failures;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (preferred + k) % n;
    bool reached = false;
    auto r = co_await call_endpoint(i, path, text, reached);
    if (stopped) co_return stopped_error();
    if (r || reached || !endpoint_failure(r.error().code)) {
      preferred = i;
      set_healthy(true);
      co_return r;
    }
    if (!failures.empty()) failures += "; ";
    failures += options.endpoints[i].origin() + ": " + r.error().describe();
  }
  set_healthy(false);
  log::debug("etcd {}: no endpoint answered: {}", path, failures);
  co_return make_error(errc::unavailable,
                       "etcd " + std::string(path) + ": no endpoint answered (" + failures + ")");
}

awaitable<result<std::optional<kv>>> etcd_client::get(const std::string& key) {
  constexpr std::string_view path = "/v3/kv/range";
  auto body = codec::range_request(key);
  auto r = co_await impl_->call(path, body);
  if (!r) co_return r.error();
  auto kvs = r->find("kvs");
  if (kvs == r->end() || (kvs->is_array() && kvs->empty())) co_return std::optional<kv>{};
  if (!kvs->is_array()) co_return malformed(path, "bad kvs");
  auto record = codec::parse_kv(kvs->front(), path);
  if (!record) co_return record.error();
  co_return std::optional<kv>{std::move(*record)};
}

awaitable<result<std::vector<kv>>> etcd_client::get_prefix(const std::string& prefix) {
  constexpr std::string_view path = "/v3/kv/range";
  // The empty prefix is every key: from "\0" to etcd's "no upper bound".
  const std::string from = prefix.empty() ? std::string(1, '\0') : prefix;
  const std::string end = prefix_end(prefix);
  auto body = codec::range_request(from, end);
  auto r = co_await impl_->call(path, body);
  if (!r) co_return r.error();
  std::vector<kv> out;
  auto kvs = r->find("kvs");
  if (kvs == r->end()) co_return out;
  if (!kvs->is_array()) co_return malformed(path, "bad kvs");
  for (const auto& item : *kvs) {
    auto record = codec::parse_kv(item, path);
    if (!record) co_return record.error();
    out.push_back(std::move(*record));
  }
  co_return out;
}

awaitable<result<std::int64_t>> etcd_client::put(const std::string& key, const std::string& value,
                                                 std::int64_t lease) {
  constexpr std::string_view path = "/v3/kv/put";
  auto body = codec::put_request(key, value, lease);
  auto r = co_await impl_->call(path, body);
  if (!r) co_return r.error();
  auto rev = codec::header_revision(*r);
  if (!rev) co_return malformed(path, "bad header");
  co_return *rev;
}

awaitable<result<txn_result>> etcd_client::txn(std::vector<compare> compares,
                                               std::vector<txn_op> success,
                                               std::vector<txn_op> failure) {
  auto body = codec::txn_request(compares, success, failure);
  auto r = co_await impl_->call("/v3/kv/txn", body);
  if (!r) co_return r.error();
  co_return codec::parse_txn(*r, success, failure);
}

awaitable<result<std::int64_t>> etcd_client::lease_grant(std::chrono::seconds ttl) {
  constexpr std::string_view path = "/v3/lease/grant";
  json body{{"TTL", std::to_string(ttl.count())}};
  auto r = co_await impl_->call(path, body);
  if (!r) co_return r.error();
  auto id = codec::int64_field(*r, "ID");
  if (!id || *id == 0) co_return malformed(path, "no lease ID");
  co_return *id;
}

awaitable<result<std::chrono::seconds>> etcd_client::lease_keepalive(std::int64_t id) {
  constexpr std::string_view path = "/v3/lease/keepalive";
  // A streaming RPC: the gateway relays our one request and closes the stream when our body
  // ends, so the answer is one `{"result":{...}}` line.
  json body{{"ID", std::to_string(id)}};
  auto r = co_await impl_->call(path, body);
  if (!r) co_return r.error();
  auto res = r->find("result");
  if (res == r->end() || !res->is_object()) co_return malformed(path, "no result");
  auto ttl = codec::int64_field(*res, "TTL");
  if (!ttl) co_return malformed(path, "bad TTL");
  // etcd answers a lease it does not know with TTL 0 (omitted) instead of an error.
  if (*ttl <= 0)
    co_return make_error(errc::not_found, "etcd " + std::string(path) + ": lease " +
                                              std::to_string(id) + " has expired or was revoked");
  co_return std::chrono::seconds{*ttl};
}

awaitable<result<void>> etcd_client::lease_revoke(std::int64_t id) {
  json body{{"ID", std::to_string(id)}};
  auto r = co_await impl_->call("/v3/lease/revoke", body);
  if (!r) co_return r.error();
  co_return result<void>{};
}

}  // namespace tokenbroker::cluster
