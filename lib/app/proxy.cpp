#include "app/proxy.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <vector>

#include "core/log.hpp"
#include "http/path.hpp"
#include "http/router.hpp"
#include "privicore/parse.hpp"

namespace tokenbroker::app {

namespace beast = http::beast;
namespace bhttp = http::bhttp;
using http::field;
using http::status;
using json = nlohmann::json;

namespace {

constexpr std::string_view k_prefix = "/v1/proxy/";
constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";
// Answers up to this size (declared) are relayed whole, header and body in one write.
constexpr std::size_t small_answer_limit = 16 * 1024;

// The buffer a body streams through, piece by piece: allocated when a body needs it, no larger
// than that body (when its length is declared) and at most `max`. A 64 KiB piece for every
// call, with the connections' read buffers sized alike, held 12 MiB of heap at 64 concurrent
// small calls, and the churn of blocks that size fragmented the heap (bench/analysis.md).
class piece_buffer {
 public:
  explicit piece_buffer(std::size_t max) : max_(max) {}
  /// `body_size`: the declared length of the body about to stream, if any.
  std::span<char> get(const boost::optional<std::uint64_t>& body_size) {
    std::size_t want = max_;
    if (body_size) want = static_cast<std::size_t>(std::clamp<std::uint64_t>(*body_size, 1, max_));
    if (want > size_) {
      data_ = std::make_unique_for_overwrite<char[]>(want);
      size_ = want;
    }
    return {data_.get(), size_};
  }

 private:
  std::size_t max_;
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
};

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls `fn` for each comma-separated element of every `name` field.
template <class Fn>
void each_element(const bhttp::fields& f, field name, Fn fn) {
  for (auto it = f.find(name); it != f.end() && it->name() == name; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      auto comma = v.find(',');
      auto item = trim(v.substr(0, comma));
      if (!item.empty()) fn(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
}

// Header fields that describe one connection rather than the message (RFC 9110 §7.6.1), and
// whatever the Connection header itself names.
struct hop_filter {
  std::vector<std::string> named;

  explicit hop_filter(const bhttp::fields& f) {
    each_element(f, field::connection, [&](std::string_view t) { named.emplace_back(t); });
  }
  bool drops(std::string_view name) const {
    static constexpr std::string_view fixed[] = {
        "connection", "keep-alive", "proxy-connection",   "te",
        "trailer",    "upgrade",    "transfer-encoding", "proxy-authenticate",
        "proxy-authorization"};
    for (auto f : fixed)
      if (iequals(name, f)) return true;
    for (const auto& n : named)
      if (iequals(name, n)) return true;
    return false;
  }
};

struct target_parts {
  std::string name;
  std::string path;   // cleaned, still percent-encoded
  std::string query;  // without '?'
};

result<target_parts> split_target(std::string_view target) {
  auto rest = target.substr(k_prefix.size());
  auto q = rest.find('?');
  std::string_view query = q == std::string_view::npos ? std::string_view{} : rest.substr(q + 1);
  rest = rest.substr(0, q);
  auto slash = rest.find('/');
  target_parts p;
  p.name = std::string(rest.substr(0, slash));
  if (p.name.empty()) return make_error(errc::invalid_argument, "the credential name is missing");
  auto path = http::clean_proxy_path(slash == std::string_view::npos ? std::string_view{}
                                                                     : rest.substr(slash));
  if (!path) return path.error();
  if (!http::valid_query(query))
    return make_error(errc::invalid_argument, "proxy query refused: character not allowed");
  p.path = std::move(*path);
  p.query = std::string(query);
  return p;
}

// `Prefer: wait=N` (RFC 7240): seconds, capped; nullopt when absent or malformed (ignored).
std::optional<std::chrono::seconds> preferred_wait(const bhttp::fields& f,
                                                   std::chrono::seconds cap) {
  std::optional<std::chrono::seconds> wait;
  each_element(f, field::prefer, [&](std::string_view item) {
    auto eq = item.find('=');
    if (eq == std::string_view::npos || !iequals(trim(item.substr(0, eq)), "wait")) return;
    auto v = trim(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    std::int64_t n = -1;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc{} && p == v.data() + v.size() && n >= 0)
      wait = std::min(std::chrono::seconds{n}, cap);
  });
  return wait;
}

std::string inject_value(const std::string& format, const secret& token) {
  std::string v = format;
  auto at = v.find("{token}");
  if (at != std::string::npos) v.replace(at, 7, token.reveal());
  return v;
}

bool header_safe(std::string_view v) noexcept {
  return std::none_of(v.begin(), v.end(), [](char c) { return c == '\r' || c == '\n' || c == 0; });
}

http::response proxy_error(status code, std::string_view error_code, std::string_view message,
                           unsigned version) {
  return http::error_response(code, error_code, message, version);
}

// Upstream failure kinds (upstream_errors_total{kind}) and what the caller is told.
struct upstream_failure {
  std::string_view kind;
  status code;
  std::string message;
};

upstream_failure classify_io(const error& e, std::string_view stage) {
  if (e.code == errc::timeout)
    return {"timeout", status::gateway_timeout, std::string(stage) + ": upstream timed out"};
  if (e.code == errc::tls) return {"tls", status::bad_gateway, e.message};
  return {stage == "connect" ? "connect" : "reset", status::bad_gateway, e.message};
}

template <class Stream>
awaitable<boost::system::error_code> write_raw(Stream& s, std::string_view bytes,
                                               std::chrono::milliseconds timeout) {
  s.expires_after(timeout);
  auto [ec, n] = co_await net::async_write(s, net::buffer(bytes.data(), bytes.size()), use_tuple);
  co_return ec;
}

// Reads up to `size` request-body bytes from the client into `data`.
template <class Stream>
awaitable<result<std::size_t>> read_client(Stream& s, http::streamed_request& sr, char* data,
                                           std::size_t size, std::chrono::milliseconds timeout) {
  auto& body = sr.parser.get().body();
  body.data = data;
  body.size = size;
  s.expires_after(timeout);
  auto [ec, n] = co_await bhttp::async_read(s, sr.buffer, sr.parser, use_tuple);
  if (ec && ec != bhttp::error::need_buffer) co_return http::io_error(ec, "reading the request body");
  co_return size - body.size;
}

// Reads up to `size` response-body bytes from the upstream into `data`.
awaitable<result<std::size_t>> read_upstream(http::connection& c,
                                             bhttp::response_parser<bhttp::buffer_body>& p,
                                             char* data, std::size_t size,
                                             std::chrono::milliseconds timeout) {
  auto& body = p.get().body();
  body.data = data;
  body.size = size;
  c.expires_at(steady_clock::now() + timeout);
  auto ec = co_await c.read(p);
  if (ec && ec != bhttp::error::need_buffer) co_return http::io_error(ec, "reading the upstream body");
  co_return size - body.size;
}

// Writes one piece of a buffer_body message through its serializer (`more` = false ends it).
template <class Write, class Message>
awaitable<boost::system::error_code> write_piece(Write write, Message& m, const char* data,
                                                 std::size_t n, bool more) {
  m.body().data = const_cast<char*>(data);
  m.body().size = n;
  m.body().more = more;
  auto ec = co_await write();
  if (ec == bhttp::error::need_buffer) ec = {};
  co_return ec;
}

}  // namespace

struct proxy::exchange {
  exchange(http::streamed_request& r, std::string n) : sr(r), name(std::move(n)) {}

  http::streamed_request& sr;
  std::string name;
  // Held for the whole exchange: a reload may replace or remove both meanwhile.
  broker::entry_ptr entry;
  std::shared_ptr<const proxy_target> target;
  std::shared_ptr<broker::provider> provider;  // the one `Prefer: wait` subscribed with
  std::string path;
  std::string upstream_target;
  std::optional<std::chrono::seconds> wait;
  steady_clock::time_point started = steady_clock::now();
  int status = 0;
  std::uint64_t bytes_up = 0;
  std::uint64_t bytes_down = 0;
};

proxy::proxy(api& local_api, broker::registry& reg, metrics::registry& metrics,
             proxy_targets targets, proxy_options options)
    : api_(local_api),
      registry_(reg),
      metrics_(metrics),
      targets_(std::move(targets)),
      options_(options) {}

void proxy::reconfigure(proxy_targets targets, std::chrono::milliseconds token_wait) {
  targets_ = std::move(targets);
  options_.token_wait = token_wait;
}

bool proxy::selects(const bhttp::request_header<>& h) {
  return h.target().substr(0, k_prefix.size()) == k_prefix;
}

awaitable<http::stream_outcome> proxy::handle(http::streamed_request& sr) {
  if (auto* tcp = std::get_if<beast::tcp_stream*>(&sr.stream)) co_return co_await serve(**tcp, sr);
  auto* local = std::get<http::unix_stream*>(sr.stream);
  co_return co_await serve(*local, sr);
}

template <class Stream>
awaitable<http::stream_outcome> proxy::serve(Stream& client, http::streamed_request& sr) {
  const auto& h = sr.parser.get();
  auto version = h.version();
  auto reply = [](http::response r) {
    http::stream_outcome o;
    o.reply = std::move(r);
    return o;
  };
  if (auto refused = api::guard(http::request_view(h), sr.peer)) co_return reply(std::move(*refused));
  auto parts = split_target(h.target());
  if (!parts)
    co_return reply(proxy_error(status::bad_request, "bad_request", parts.error().message, version));
  auto who = api_.authorize(parts->name, sr.peer, version);
  if (auto* refused = std::get_if<http::response>(&who)) co_return reply(std::move(*refused));
  auto t = targets_.find(parts->name);
  if (t == targets_.end())
    co_return reply(proxy_error(status::not_found, "not_found",
                                "credential \"" + parts->name + "\" has no api_url to proxy to",
                                version));

  exchange x{sr, parts->name};
  x.entry = std::get<broker::entry_ptr>(who);
  x.target = t->second;
  x.path = parts->path;
  auto joined = x.target->base.join(parts->path);
  x.upstream_target = joined.path;
  std::string query = joined.query;
  if (!parts->query.empty()) query += (query.empty() ? "" : "&") + parts->query;
  if (!query.empty()) x.upstream_target += "?" + query;
  if (x.entry->cred->status().provider == "privicore")
    x.wait = preferred_wait(h, options_.max_wait);

  auto out = co_await forward(client, x);
  if (out.reply) x.status = out.reply->result_int();
  if (x.status == 0) x.status = 499;  // the client went away before any answer
  auto seconds = std::chrono::duration<double>(steady_clock::now() - x.started).count();
  metrics_.proxy_request(x.name, x.status, seconds);
  log::debug("proxy {} {} {} -> {} in {:.1f} ms ({} bytes up, {} down)", x.name,
             std::string(h.method_string()), x.path, x.status, seconds * 1000, x.bytes_up,
             x.bytes_down);
  co_return out;
}

template <class Stream>
awaitable<http::stream_outcome> proxy::forward(Stream& client, exchange& x) {
  auto& sr = x.sr;
  auto& parser = sr.parser;
  const auto& h = parser.get();
  const auto version = h.version();
  const auto timeout = x.target->timeout;
  const auto write_timeout = sr.limits.write_timeout;
  auto reply = [&](http::response r) {
    http::stream_outcome o;
    o.reply = std::move(r);
    return o;
  };
  auto upstream_failed = [&](const upstream_failure& f) {
    metrics_.upstream_error(x.name, f.kind);
    log::debug("proxy {}: upstream {} failure: {}", x.name, f.kind, f.message);
    bool timed_out = f.code == status::gateway_timeout;
    return reply(proxy_error(f.code, timed_out ? "upstream_timeout" : "upstream_unreachable",
                             f.message, version));
  };

  // 1. The request body: read whole when small (so a 401 can be retried), else streamed.
  const auto content_length = parser.content_length();
  const bool framed = content_length.has_value() || parser.chunked();
  const bool client_expects = iequals(h[field::expect], "100-continue");
  bool forward_expect = false;  // let the upstream answer the client's Expect
  std::string kept;
  if (!parser.is_done()) {
    bool small_length = content_length && *content_length <= options_.retry_body_limit;
    if (client_expects && !small_length && content_length) {
      forward_expect = true;  // a large upload: the upstream may refuse it before it is sent
    } else {
      if (client_expects) {
        if (auto ec = co_await write_raw(client, k_continue, write_timeout); ec)
          co_return http::stream_outcome{};
      }
      kept.resize(options_.retry_body_limit);
      std::size_t got = 0;
      while (!parser.is_done() && got < kept.size()) {
        auto n = co_await read_client(client, sr, kept.data() + got, kept.size() - got, timeout);
        if (!n) co_return reply(proxy_error(status::bad_request, "bad_request",
                                            n.error().message, version));
        got += *n;
      }
      kept.resize(got);
    }
  }
  const bool small = parser.is_done();

  // 2. The token, and for `Prefer: wait` a subscription to acks before the command is sent.
  auto token = co_await x.entry->cred->get_token(std::chrono::seconds{0}, options_.token_wait);
  if (!token) co_return reply(error_for(token.error(), version));
  std::uint64_t prepared = 0;
  if (x.wait) {
    auto until = steady_clock::now() + std::min<std::chrono::milliseconds>(*x.wait, timeout);
    x.provider = x.entry->cred->shared_provider();
    prepared = co_await x.provider->prepare_command(until);
  }

  piece_buffer buf(options_.chunk_size);
  for (int attempt = 0;; ++attempt) {
    auto value = inject_value(x.entry->inject_format, token->access_token);
    if (!header_safe(value))
      co_return upstream_failed({"token", status::bad_gateway,
                                 "the token cannot be sent in a header (line break)"});

    // 3. The upstream request header: the client's fields minus hop-by-hop ones, minus any
    // credentials the client sent, plus ours.
    bhttp::request<bhttp::buffer_body> up;
    up.method_string(h.method_string());
    up.target(x.upstream_target);
    up.version(11);
    hop_filter hops(h);
    for (const auto& f : h) {
      auto name = f.name_string();
      if (hops.drops(name) || iequals(name, "host") || iequals(name, "content-length") ||
          iequals(name, "expect") || iequals(name, "authorization") ||
          iequals(name, "x-dpt-authorization") || iequals(name, x.entry->inject_header) ||
          iequals(name, "x-token-broker"))
        continue;
      if (x.wait && f.name() == field::prefer) continue;  // ours to honour, not the upstream's
      up.insert(name, f.value());
    }
    up.set(field::host, x.target->base.host_header());
    up.set(x.entry->inject_header, value);
    up.insert(field::via, "1.1 tokenbroker");
    up.keep_alive(true);
    if (small) {
      if (framed || !kept.empty()) up.content_length(kept.size());
    } else if (content_length) {
      up.content_length(*content_length);
    } else {
      up.chunked(true);
    }
    if (forward_expect) up.set(field::expect, "100-continue");

    // 4. Connect (a pooled connection when one is idle), send, read the answer's header.
    auto conn = co_await x.target->client->acquire(
        x.target->base, steady_clock::now() + x.target->client->options().connect_timeout);
    if (!conn) co_return upstream_failed(classify_io(conn.error(), "connect"));
    auto& c = *conn.value();
    bhttp::request_serializer<bhttp::buffer_body> ser(up);
    auto write_up = [&]() { return c.write(ser); };
    up.body().data = nullptr;
    up.body().more = true;
    c.expires_at(steady_clock::now() + timeout);
    auto wec = co_await c.write_header(ser);

    std::optional<bhttp::response_parser<bhttp::buffer_body>> res;
    // Reads the next answer's header; interim 1xx answers are skipped, except the 100 Continue
    // that answers a forwarded Expect when `want_continue`.
    auto read_head = [&](bool want_continue) -> awaitable<boost::system::error_code> {
      for (;;) {
        res.emplace();
        res->header_limit(64 * 1024);
        res->body_limit(std::numeric_limits<std::uint64_t>::max());
        if (h.method() == http::verb::head) res->skip(true);
        c.expires_at(steady_clock::now() + timeout);
        auto ec = co_await c.read(*res, true);
        if (ec) co_return ec;
        auto code = res->get().result_int();
        if (code >= 200 || code == 101 || (code == 100 && want_continue)) co_return ec;
      }
    };

    boost::system::error_code rec;
    bool refused_early = false;  // the upstream answered a forwarded Expect with a final status
    if (!wec && forward_expect) {
      rec = co_await read_head(true);
      if (!rec && res->get().result_int() == 100) {
        if (auto ec = co_await write_raw(client, k_continue, write_timeout); ec)
          co_return http::stream_outcome{};
      } else if (!rec) {
        refused_early = true;  // relay the refusal; the body is never sent
      }
    }
    bool body_sent = false;
    if (!wec && !rec && !refused_early) {
      // The body: what was kept, then the rest of the client's stream.
      if (!kept.empty()) wec = co_await write_piece(write_up, up, kept.data(), kept.size(), true);
      x.bytes_up = kept.size();
      std::span<char> piece;
      if (!parser.is_done()) piece = buf.get(content_length);  // a body left to stream
      while (!wec && !parser.is_done()) {
        auto n = co_await read_client(client, sr, piece.data(), piece.size(), timeout);
        if (!n)
          co_return reply(proxy_error(status::bad_request, "bad_request", n.error().message,
                                      version));
        if (*n == 0) continue;
        x.bytes_up += *n;
        c.expires_at(steady_clock::now() + timeout);
        wec = co_await write_piece(write_up, up, piece.data(), *n, true);
      }
      if (!wec) {
        c.expires_at(steady_clock::now() + timeout);
        wec = co_await write_piece(write_up, up, nullptr, 0, false);
      }
      body_sent = !wec;
      // After a failed write the upstream may still have answered (and closed) before taking
      // the whole body: an answer already on the wire is worth relaying.
      rec = co_await read_head(false);
    }
    if (!res && !rec) rec = co_await read_head(false);  // the header write itself failed
    if (rec) {
      bool idempotent = h.method() == http::verb::get || h.method() == http::verb::head ||
                        h.method() == http::verb::put || h.method() == http::verb::delete_ ||
                        h.method() == http::verb::options;
      bool stale = c.reused() && attempt == 0 && small && (idempotent || !body_sent) &&
                   (rec == bhttp::error::end_of_stream || rec == net::error::eof ||
                    rec == net::error::connection_reset || rec == net::error::broken_pipe);
      if (stale) continue;  // a pooled connection the upstream had closed: once more, fresh
      if (rec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
          rec != bhttp::error::end_of_stream && rec != bhttp::error::partial_message)
        co_return upstream_failed({"protocol", status::bad_gateway,
                                   "malformed answer from " + x.target->base.host_header()});
      auto e = http::io_error(rec, "upstream " + x.target->base.host_header());
      co_return upstream_failed(classify_io(e, "request"));
    }

    auto& head = res->get();
    const int code = head.result_int();
    x.status = code;
    // The upstream refused the token we injected: stop serving exactly that one.
    if (code == 401) x.entry->cred->invalidate(token->access_token);

    // 5. A body worth holding on to: a 401 we may retry, a 202 whose command we wait for.
    // Also a small body of declared length: read with its header (it has usually arrived with
    // it), the whole answer then leaves in one write.
    std::string prefix;
    bool hold = (code == 401 && small && attempt == 0) || (code == 202 && x.wait);
    auto declared = res->content_length();
    bool small_answer = declared && *declared <= small_answer_limit;
    if ((hold || small_answer) && !res->is_done()) {
      prefix.resize(hold ? options_.command_body_limit : static_cast<std::size_t>(*declared));
      std::size_t got = 0;
      while (!res->is_done() && got < prefix.size()) {
        auto n = co_await read_upstream(c, *res, prefix.data() + got, prefix.size() - got, timeout);
        if (!n) co_return upstream_failed(classify_io(n.error(), "response"));
        got += *n;
      }
      prefix.resize(got);
    }
    bool whole = res->is_done();
    bool reusable = whole && res->keep_alive() && !res->need_eof();

    if (code == 401 && small && attempt == 0 && whole) {
      // Our token was refused: refresh once (single flight in the engine), send once more.
      if (reusable) x.target->client->release(std::move(conn.value()));
      auto fresh = co_await x.entry->cred->get_token(std::chrono::seconds{0}, options_.token_wait);
      if (fresh && fresh->access_token.reveal() != token->access_token.reveal()) {
        log::info("proxy {}: upstream refused the token, retrying once with a refreshed one",
                  x.name);
        token = std::move(fresh);
        continue;
      }
      // No new token: the 401 goes to the client as it came.
      http::response pass{head.result(), version};
      hop_filter pass_hops(head);
      for (const auto& f : head)
        if (!pass_hops.drops(f.name_string())) pass.insert(f.name_string(), f.value());
      pass.body() = std::move(prefix);
      pass.prepare_payload();
      co_return reply(std::move(pass));
    }

    if (code == 202 && x.wait && whole) {
      http::response accepted{head.result(), head.version()};
      for (const auto& f : head) accepted.insert(f.name_string(), f.value());
      accepted.body() = prefix;
      auto id = privicore::parse_command_id(accepted);
      if (id) {
        if (reusable) x.target->client->release(std::move(conn.value()));
        auto until = x.started + *x.wait;
        std::string command = *id;
        auto outcome = co_await x.provider->await_command(std::move(command), prepared, until);
        std::string preference = "wait=" + std::to_string(x.wait->count());
        if (!outcome && outcome.error().code == errc::timeout) {
          auto r = http::json_response(
              status::gateway_timeout,
              json{{"error", "upstream_timeout"},
                   {"message", "command " + *id + " had no outcome within " +
                                   std::to_string(x.wait->count()) + " s"},
                   {"commandId", *id}}
                  .dump(),
              version);
          r.set(field::preference_applied, preference);
          co_return reply(std::move(r));
        }
        if (!outcome)
          co_return upstream_failed({"command", status::bad_gateway, outcome.error().describe()});
        auto r = http::json_response(
            status::ok,
            json{{"commandId", *id},
                 {"status", outcome->succeeded ? "succeeded" : "rejected"},
                 {"body", outcome->body}}
                .dump(),
            version);
        r.set(field::preference_applied, preference);
        co_return reply(std::move(r));
      }
      // Not a command id after all: the 202 passes through untouched.
    }

    // 6. Relay the answer: header, what was held, then the rest of the upstream's stream.
    bhttp::response<bhttp::buffer_body> down;
    down.result(head.result_int());
    down.reason(head.reason());
    down.version(version);
    hop_filter down_hops(head);
    for (const auto& f : head)
      if (!down_hops.drops(f.name_string())) down.insert(f.name_string(), f.value());
    down.insert(field::via, "1.1 tokenbroker");
    const bool no_body = h.method() == http::verb::head || code == 204 || code == 304 ||
                         (code >= 100 && code < 200);
    bool keep = h.keep_alive() && parser.is_done() && body_sent;
    if (!no_body && !res->content_length()) {
      if (version >= 11) {
        down.chunked(true);
      } else {
        keep = false;  // an HTTP/1.0 client learns the end from the close
      }
    }
    down.keep_alive(keep);
    bhttp::response_serializer<bhttp::buffer_body> out(down);
    auto write_down = [&]() -> awaitable<boost::system::error_code> {
      client.expires_after(write_timeout);
      auto [ec, n] = co_await bhttp::async_write(client, out, use_tuple);
      co_return ec;
    };
    boost::system::error_code dec;
    x.bytes_down = prefix.size();
    if (whole) {
      // The whole answer is at hand (a small one is read with its header): header and body
      // leave in one write, not two.
      dec = co_await write_piece(write_down, down, prefix.data(), prefix.size(), false);
      if (dec) co_return http::stream_outcome{};
    } else {
      down.body().data = nullptr;
      down.body().more = !no_body;
      client.expires_after(write_timeout);
      auto [hec, hn] = co_await bhttp::async_write_header(client, out, use_tuple);
      if (hec) co_return http::stream_outcome{};
      if (!prefix.empty())
        dec = co_await write_piece(write_down, down, prefix.data(), prefix.size(), true);
    }
    auto piece = no_body || whole ? std::span<char>{} : buf.get(res->content_length());
    c.reserve_read_buffer(piece.size());
    while (!dec && !no_body && !res->is_done()) {
      auto n = co_await read_upstream(c, *res, piece.data(), piece.size(), timeout);
      if (!n) {
        // Too late for an error answer: closing mid-body tells the client the answer is cut.
        metrics_.upstream_error(x.name, n.error().code == errc::timeout ? "timeout" : "reset");
        log::debug("proxy {}: upstream body failed: {}", x.name, n.error().message);
        co_return http::stream_outcome{};
      }
      if (*n == 0) continue;
      x.bytes_down += *n;
      dec = co_await write_piece(write_down, down, piece.data(), *n, true);
    }
    if (!dec && !no_body && !whole) dec = co_await write_piece(write_down, down, nullptr, 0, false);
    if (dec) co_return http::stream_outcome{};
    if (res->is_done() && res->keep_alive() && !res->need_eof() && body_sent) {
      c.shrink_read_buffer();  // an idle pooled connection keeps only what it holds
      x.target->client->release(std::move(conn.value()));
    }
    http::stream_outcome o;
    o.keep_alive = keep;
    co_return o;
  }
}

}  // namespace tokenbroker::app
