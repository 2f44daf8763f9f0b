#include "app/proxy.hpp"

#include <algorithm>
#include <boost/container/small_vector.hpp>
#include <charconv>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <vector>

#include "app/proxy_body.hpp"
#include "app/proxy_wire.hpp"
#include "core/log.hpp"
#include "http/path.hpp"
#include "http/router.hpp"
#include "http/splice.hpp"
#include "http/write.hpp"
#include "privicore/parse.hpp"

namespace tokenbroker::app {

namespace beast = http::beast;
namespace bhttp = http::bhttp;
using http::field;
using http::status;
using json = nlohmann::json;

namespace {

constexpr std::string_view k_prefix = "/v1/proxy/";
// Answers up to this size (declared) are relayed whole, header and body in one write.
constexpr std::size_t small_answer_limit = 16 * 1024;
// Answers longer than this (declared) between plain sockets are relayed by splice(2) through a
// pipe of up to 1 MiB (http/splice.hpp); a pipe the system keeps below 64 KiB is not worth it.
constexpr std::uint64_t splice_threshold = 512 * 1024;
constexpr std::size_t splice_pipe_size = 1024 * 1024;
constexpr std::size_t splice_pipe_least = 64 * 1024;

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

bool proxy::selects(const http::request_reader& h) {
  return h.target().substr(0, k_prefix.size()) == k_prefix;
}

awaitable<http::stream_outcome> proxy::handle(http::streamed_request& sr) {
  // Not a coroutine: it hands back forward's, one frame fewer per call.
  if (auto* tcp = std::get_if<beast::tcp_stream*>(&sr.stream)) return forward(**tcp, sr);
  return forward(*std::get<http::unix_stream*>(sr.stream), sr);
}

template <class Stream>
awaitable<http::stream_outcome> proxy::forward(Stream& client, http::streamed_request& sr) {
  auto& parser = sr.parser;
  const auto& h = parser;  // its header
  const auto version = h.version();
  // Refusals before the exchange starts; they are not proxied calls (proxy_requests_total).
  auto refuse = [](http::response r) {
    http::stream_outcome o;
    o.reply = std::move(r);
    return o;
  };
  if (auto refused = api::guard(http::request_view(h), sr.peer))
    co_return refuse(std::move(*refused));
  auto parts = split_target(h.target());
  if (!parts)
    co_return refuse(proxy_error(status::bad_request, "bad_request", parts.error().message, version));
  auto who = api_.authorize(parts->name, sr.peer, version);
  if (auto* refused = std::get_if<http::response>(&who)) co_return refuse(std::move(*refused));
  auto t = targets_.find(parts->name);
  if (t == targets_.end())
    co_return refuse(proxy_error(status::not_found, "not_found",
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
  if (x.entry->cred->provider_name() == "privicore")
    x.wait = preferred_wait(h, options_.max_wait);

  const auto timeout = x.target->timeout;
  const auto write_timeout = sr.limits.write_timeout;
  // The header bytes on their way, upstream (with the token) then down: the connection's
  // scratch buffer, wiped as the call ends.
  std::string& head_bytes = sr.scratch;
  // Every way out from here: the call's status and time are recorded on it.
  auto done = [&](http::stream_outcome o) {
    wipe_bytes(head_bytes);
    if (o.reply) x.status = o.reply->result_int();
    if (x.status == 0) x.status = 499;  // the client went away before any answer
    auto seconds = std::chrono::duration<double>(steady_clock::now() - x.started).count();
    metrics_.proxy_request(x.name, x.status, seconds);
    log::debug("proxy {} {} {} -> {} in {:.1f} ms ({} bytes up, {} down)", x.name,
               std::string(h.method_string()), x.path, x.status, seconds * 1000, x.bytes_up,
               x.bytes_down);
    return o;
  };
  auto reply = [&](http::response r) { return done(refuse(std::move(r))); };
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
  const bool client_expects = beast::iequals(h[field::expect], "100-continue");
  bool forward_expect = false;  // let the upstream answer the client's Expect
  std::string kept;
  if (!parser.is_done()) {
    bool small_length = content_length && *content_length <= options_.retry_body_limit;
    if (client_expects && !small_length && content_length) {
      forward_expect = true;  // a large upload: the upstream may refuse it before it is sent
    } else {
      if (client_expects) {
        if (auto ec = co_await write_continue(client, write_timeout); ec)
          co_return done({});
      }
      // Room for the declared length, else grown as a chunked body arrives: a 64 KiB string
      // allocated and zero-filled for every 1 KiB POST cost more than relaying it.
      const std::size_t limit = options_.retry_body_limit;
      kept.resize(content_length ? std::min<std::uint64_t>(*content_length, limit)
                                 : std::min<std::size_t>(4096, limit));
      std::size_t got = 0;
      while (!parser.is_done()) {
        if (got == kept.size()) {
          if (kept.size() >= limit) break;
          kept.resize(std::min(kept.size() * 2, limit));
        }
        result<std::size_t> n{std::size_t{0}};
        if (!take_client(sr, kept.data() + got, kept.size() - got, n))  // no frame if it is here
          n = co_await read_client(client, sr, kept.data() + got, kept.size() - got, timeout);
        if (!n) co_return reply(proxy_error(status::bad_request, "bad_request",
                                            n.error().message, version));
        got += *n;
      }
      kept.resize(got);
    }
  }
  const bool small = parser.is_done();
  const bool idempotent = http::idempotent(h.method());

  // 2. The token, and for `Prefer: wait` a subscription to acks before the command is sent.
  // A held token is copied at once; get_token (a coroutine) only when it must wait. Only the
  // value is kept: the rest of a served token is the local API's.
  secret token;
  if (auto held = x.entry->cred->peek_token(std::chrono::seconds{0}, system_clock::now())) {
    token = held->access_token;
  } else {
    auto got = co_await x.entry->cred->get_token(std::chrono::seconds{0}, options_.token_wait);
    if (!got) co_return reply(error_for(got.error(), version));
    token = std::move(got->access_token);
  }
  std::uint64_t prepared = 0;
  if (x.wait) {
    auto until = steady_clock::now() + std::min<std::chrono::milliseconds>(*x.wait, timeout);
    x.provider = x.entry->cred->shared_provider();
    prepared = co_await x.provider->prepare_command(until);
  }

  piece_buffer buf(options_.chunk_size);
  const std::string host = x.target->base.host_header();
  for (int attempt = 0;; ++attempt) {
    if (!header_safe(token.reveal()))  // inject_format was checked with the config
      co_return upstream_failed({"token", status::bad_gateway,
                                 "the token cannot be sent in a header (line break)"});

    // 3. The upstream request header: the client's fields minus hop-by-hop ones, minus any
    // credentials the client sent, plus ours (proxy_wire.hpp).
    upstream_request u;
    u.target = x.upstream_target;
    u.host = host;
    u.inject_header = x.entry->inject_header;
    u.inject_format = x.entry->inject_format;
    u.token = token.reveal();
    u.drop_prefer = x.wait.has_value();
    if (small) {
      if (framed || !kept.empty()) u.content_length = kept.size();
    } else if (content_length) {
      u.content_length = *content_length;
    } else {
      u.chunked = true;
    }
    u.expect_continue = forward_expect;
    upstream_head(h, u, head_bytes);

    // 4. Connect (a pooled connection when one is idle), send, read the answer's header.
    // A first try that would be sent again on a fresh connection if the upstream had closed the
    // pooled one (`stale`, below) skips asking the socket first; over TLS a peer's close can
    // also end the read as a truncated stream, so a TLS connection is always asked.
    const bool replayable = attempt == 0 && small && idempotent && !x.target->base.tls();
    result<http::connection_ptr> conn = x.target->client->take_idle(x.target->base, !replayable);
    if (!*conn)
      conn = co_await x.target->client->acquire(
          x.target->base, steady_clock::now() + x.target->client->options().connect_timeout);
    if (!conn) co_return upstream_failed(classify_io(conn.error(), "connect"));
    auto& c = *conn.value();
    // Writes the header (unless already sent), a piece of body, and the end of a chunked one.
    // Not a coroutine: the piece's buffers live in `up` while the write is awaited.
    std::optional<wire_piece> up;
    auto send_up = [&](std::string_view head_part, std::string_view body, bool last) {
      up.emplace(head_part, body, u.chunked, last);
      return c.write_all(up->buffers(), timeout);
    };
    boost::system::error_code wec;
    if (forward_expect) wec = co_await send_up(head_bytes, {}, false);

    // The answer's header is read into `res`, a fresh parser each time:
    //   do rec = co_await c.read_header(next_head(), deadline()); while (!rec && interim(..));
    // skips interim 1xx answers, except the 100 Continue that answers a forwarded Expect when
    // asked. A loop in this frame: a coroutine of its own cost a frame per call.
    std::optional<http::answer_parser> res;
    auto next_head = [&]() -> http::answer_parser& {
      res.emplace();
      res->header_limit(64 * 1024);
      res->body_limit(std::numeric_limits<std::uint64_t>::max());
      if (h.method() == http::verb::head) res->skip(true);
      return *res;
    };
    auto deadline = [&] { return steady_clock::now() + timeout; };
    auto interim = [&](bool want_continue) {
      auto code = res->result_int();
      return code < 200 && code != 101 && !(code == 100 && want_continue);
    };

    boost::system::error_code rec;
    bool refused_early = false;  // the upstream answered a forwarded Expect with a final status
    if (!wec && forward_expect) {
      do rec = co_await c.read_header(next_head(), deadline());
      while (!rec && interim(true));
      if (!rec && res->result_int() == 100) {
        if (auto ec = co_await write_continue(client, write_timeout); ec)
          co_return done({});
      } else if (!rec) {
        refused_early = true;  // relay the refusal; the body is never sent
      }
    }
    bool body_sent = false;
    if (!wec && !rec && !refused_early) {
      // The header (unless sent for Expect) and what was kept leave in one write, then the
      // rest of the client's stream.
      std::string_view first = forward_expect ? std::string_view{} : head_bytes;
      up.emplace(first, kept, u.chunked, false);  // as send_up, without its coroutine frame
      std::size_t written = 0;
      if (!c.write_now(up->buffers(), written, wec))
        wec = co_await c.write_rest(up->buffers(), written, timeout);
      x.bytes_up = kept.size();
      std::span<char> piece;
      if (!parser.is_done()) piece = buf.get(content_length);  // a body left to stream
      bool ended = !u.chunked;  // a chunked body ends with its last chunk
      while (!wec && !parser.is_done()) {
        auto n = co_await read_client(client, sr, piece.data(), piece.size(), timeout);
        if (!n)
          co_return reply(proxy_error(status::bad_request, "bad_request", n.error().message,
                                      version));
        if (*n == 0) continue;
        x.bytes_up += *n;
        ended = ended || parser.is_done();
        wec = co_await send_up({}, std::string_view(piece.data(), *n), parser.is_done());
      }
      if (!wec && !ended) wec = co_await send_up({}, {}, true);
      body_sent = !wec;
      // After a failed write the upstream may still have answered (and closed) before taking
      // the whole body: an answer already on the wire is worth relaying.
      do rec = co_await c.read_header(next_head(), deadline());
      while (!rec && interim(false));
    }
    if (!res && !rec) {  // the header write itself failed
      do rec = co_await c.read_header(next_head(), deadline());
      while (!rec && interim(false));
    }
    if (rec) {
      bool stale = c.reused() && attempt == 0 && small && (idempotent || !body_sent) &&
                   http::closed_by_peer(rec);
      if (stale) continue;  // a pooled connection the upstream had closed: once more, fresh
      if (rec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
          rec != bhttp::error::end_of_stream && rec != bhttp::error::partial_message)
        co_return upstream_failed({"protocol", status::bad_gateway, "malformed answer from " + host});
      auto e = http::io_error(rec, "upstream " + host);
      co_return upstream_failed(classify_io(e, "request"));
    }

    const auto& head = *res;
    const int code = head.result_int();
    x.status = code;
    // The upstream refused the token we injected: stop serving exactly that one.
    if (code == 401) x.entry->cred->invalidate(token);

    // 5. A body worth holding on to: a 401 we may retry, a 202 whose command we wait for.
    // Also a small body of declared length: read with its header (it has usually arrived with
    // it), the whole answer then leaves in one write.
    boost::container::small_vector<char, 2048> prefix;  // a small answer's fits in the frame
    bool hold = (code == 401 && small && attempt == 0) || (code == 202 && x.wait);
    auto declared = res->content_length();
    bool small_answer = declared && *declared <= small_answer_limit;
    if ((hold || small_answer) && !res->is_done()) {
      prefix.resize(hold ? options_.command_body_limit : static_cast<std::size_t>(*declared));
      std::size_t got = 0;
      while (!res->is_done() && got < prefix.size()) {
        result<std::size_t> n{std::size_t{0}};
        if (!take_upstream(c, *res, prefix.data() + got, prefix.size() - got, n))
          n = co_await read_upstream(c, *res, prefix.data() + got, prefix.size() - got, timeout);
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
      if (fresh && fresh->access_token.reveal() != token.reveal()) {
        log::info("proxy {}: upstream refused the token, retrying once with a refreshed one",
                  x.name);
        token = std::move(fresh->access_token);
        continue;
      }
      // No new token: the 401 goes to the client as it came.
      http::response pass{head.result(), version};
      hop_filter pass_hops(head);
      for (const auto& f : head)
        if (!pass_hops.drops(f)) pass.insert(f.name_string(), f.value());
      pass.body().assign(prefix.data(), prefix.size());
      pass.prepare_payload();
      co_return reply(std::move(pass));
    }

    if (code == 202 && x.wait && whole) {
      http::response accepted{head.result(), head.version()};
      for (const auto& f : head) accepted.insert(f.name_string(), f.value());
      accepted.body().assign(prefix.data(), prefix.size());
      if (auto id = privicore::parse_command_id(accepted)) {
        if (reusable) x.target->client->release(std::move(conn.value()));
        co_return reply(co_await command_outcome(x, *id, prepared, version));
      }
      // Not a command id after all: the 202 passes through untouched.
    }

    // 6. Relay the answer: header, what was held, then the rest of the upstream's stream.
    const bool no_body = h.method() == http::verb::head || code == 204 || code == 304 ||
                         (code >= 100 && code < 200);
    downstream_answer d;
    d.version = version;
    d.keep_alive = h.keep_alive() && parser.is_done() && body_sent;
    if (!no_body && !declared) {
      if (version >= 11) {
        d.chunked = true;
      } else {
        d.keep_alive = false;  // an HTTP/1.0 client learns the end from the close
      }
    }
    downstream_head(head, d, head_bytes);
    std::optional<wire_piece> down;  // as `up` is for send_up
    auto send_down = [&](std::string_view head_part, std::string_view body, bool last) {
      down.emplace(head_part, body, d.chunked, last);
      return http::write_all(client, down->buffers(), write_timeout);
    };
    // The whole answer is at hand (a small one is read with its header): it leaves in one write.
    x.bytes_down = prefix.size();
    down.emplace(head_bytes, std::string_view(prefix.data(), prefix.size()), d.chunked,
                 whole);  // as send_down, without its frame
    boost::system::error_code dec;
    std::size_t written = 0;
    if (!http::write_now(client, down->buffers(), written, dec))
      dec = co_await http::write_rest(client, down->buffers(), written, write_timeout);
    if (dec) co_return done({});
    bool ended = whole;
    auto piece = no_body || whole ? std::span<char>{} : buf.get(declared);
    // Too late for an error answer once the header is relayed: closing mid-body tells the
    // client the answer is cut.
    auto cut = [&](std::string_view kind, std::string_view why) {
      metrics_.upstream_error(x.name, kind);
      log::debug("proxy {}: upstream body failed: {}", x.name, why);
      return done({});
    };
    // A long body of declared length between plain sockets: what the connection has already
    // read goes on as pieces, the rest by splice(2), without passing through the parser.
    // (Uploads are copied: spliced, they took about as much CPU and went no faster, bounded by
    // what the uploading client's own socket buffer holds; bench/analysis.md.)
    bool may_splice = !no_body && !whole && declared && *declared >= splice_threshold &&
                      !d.chunked && !x.target->base.tls();
    bool spliced = false;
    c.reserve_read_buffer(piece.size());
    while (!no_body && !res->is_done()) {
      if (may_splice && c.buffered() == 0) {
        may_splice = false;  // tried once: a pipe the system keeps small means copying
        auto left = res->content_length_remaining();
        http::splice_pipe pipe(splice_pipe_size, splice_pipe_least);
        if (left && pipe.usable()) {
          auto moved = co_await http::splice_exact(c.tcp().socket(), client.socket(), pipe,
                                                   *left, timeout, write_timeout);
          x.bytes_down += moved.moved;
          switch (moved.failure) {
            case http::splice_failure::none: break;
            case http::splice_failure::source_timeout:
              co_return cut("timeout", moved.error.message());
            case http::splice_failure::source_ended:
            case http::splice_failure::source_failed:
              co_return cut("reset", moved.error.message());
            case http::splice_failure::sink_failed:
            case http::splice_failure::sink_timeout: co_return done({});
          }
          spliced = true;
          break;
        }
      }
      auto n = co_await read_upstream(c, *res, piece.data(), piece.size(), timeout);
      if (!n) {
        co_return cut(n.error().code == errc::timeout ? "timeout" : "reset", n.error().message);
      }
      if (*n == 0) continue;
      x.bytes_down += *n;
      ended = res->is_done();
      auto ec = co_await send_down({}, std::string_view(piece.data(), *n), ended);
      if (ec) co_return done({});
    }
    if (!ended && d.chunked) {
      if (auto ec = co_await send_down({}, {}, true); ec) co_return done({});
    }
    if ((res->is_done() || spliced) && res->keep_alive() && !res->need_eof() && body_sent) {
      c.shrink_read_buffer();  // an idle pooled connection keeps only what it holds
      x.target->client->release(std::move(conn.value()));
    }
    http::stream_outcome o;
    o.keep_alive = d.keep_alive;
    co_return done(std::move(o));
  }
}

awaitable<http::response> proxy::command_outcome(exchange& x, const std::string& id,
                                                 std::uint64_t prepared, unsigned version) {
  auto until = x.started + *x.wait;
  std::string command = id;
  auto outcome = co_await x.provider->await_command(std::move(command), prepared, until);
  std::string preference = "wait=" + std::to_string(x.wait->count());
  if (!outcome && outcome.error().code == errc::timeout) {
    auto r = http::json_response(
        status::gateway_timeout,
        json{{"error", "upstream_timeout"},
             {"message", "command " + id + " had no outcome within " +
                             std::to_string(x.wait->count()) + " s"},
             {"commandId", id}}
            .dump(),
        version);
    r.set(field::preference_applied, preference);
    co_return r;
  }
  if (!outcome) {
    metrics_.upstream_error(x.name, "command");
    log::debug("proxy {}: upstream command failure: {}", x.name, outcome.error().describe());
    co_return proxy_error(status::bad_gateway, "upstream_unreachable", outcome.error().describe(),
                          version);
  }
  auto r = http::json_response(status::ok,
                               json{{"commandId", id},
                                    {"status", outcome->succeeded ? "succeeded" : "rejected"},
                                    {"body", outcome->body}}
                                   .dump(),
                               version);
  r.set(field::preference_applied, preference);
  co_return r;
}

}  // namespace tokenbroker::app
