// run_session's definition, included by session.cpp (plain TCP) and session_tls.cpp (TLS): one
// instantiation per file, so the simulator's heaviest code compiles on both cores at once.
#pragma once

#include "session.hpp"

#include <boost/beast/websocket/rfc6455.hpp>

#include "core/log.hpp"
#include "handlers.hpp"
#include "stream_io.hpp"

namespace tokenbroker::sim {
namespace {

using http::beast::flat_buffer;
namespace bhttp = http::bhttp;

response fault_response(const request& req, const fault& f) {
  if (f.kind == fault_kind::malformed) {
    response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = R"({"token": )";  // truncated JSON on purpose
    res.prepare_payload();
    return res;
  }
  auto res = error_response(req, f.status, "sim.fault", "injected fault");
  if (f.kind == fault_kind::retry_after)
    res.set(http::field::retry_after, std::to_string(f.retry_after));
  return res;
}

// Misbehaviours that end the connection; false when `f` is not one of them.
template <class Stream>
awaitable<bool> do_fatal_fault(context& ctx, Stream& stream, const fault& f) {
  if (f.kind == fault_kind::hang) {
    co_await do_hang(stream, ctx.opts.hang_max);
    co_return true;
  }
  if (f.kind == fault_kind::reset) {
    do_reset(stream);
    co_return true;
  }
  co_return false;
}

// POST /data-token/upload: streams any size of body (chunked or not) through SHA-256 without
// buffering it; answers {"bytes","sha256"}. Returns false when the connection must end.
template <class Stream>
awaitable<bool> do_upload(context& ctx, Stream& stream, flat_buffer& buf,
                          bhttp::request_parser<bhttp::empty_body>& hp) {
  request head;
  head.version(hp.get().version());
  head.keep_alive(hp.get().keep_alive());
  auto profile = data_plane_profile(ctx, hp.get());
  if (!profile) {
    // Refuse without reading a large body: answer, then close.
    auto res = error_response(head, profile.error());
    res.keep_alive(false);
    co_await do_write(ctx, stream, res);
    co_return false;
  }
  co_await do_continue(ctx, stream, hp.get());
  sha256 digest;
  std::uint64_t total = 0;
  auto hash = [&](const char* data, std::size_t n) {
    digest.update(data, n);
    total += n;
  };
  auto ec = co_await read_body_streamed(ctx, stream, buf, hp, boost::none, hash);
  if (ec) co_return false;
  auto res = json_response(head, 200, {{"bytes", total}, {"sha256", digest.finish()}});
  bool written = co_await do_write(ctx, stream, res);
  co_return written&& res.keep_alive();
}

}  // namespace

template <class Stream>
awaitable<void> run_session(context& ctx, Stream stream, bool loopback_peer) {
  flat_buffer buf;
  for (;;) {
    bhttp::request_parser<bhttp::empty_body> hp;  // a fresh parser with limits per message
    hp.header_limit(static_cast<std::uint32_t>(ctx.opts.header_limit));
    hp.body_limit(boost::none);  // checked per endpoint below, once the path is known
    set_deadline(stream, ctx.opts.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buf, hp, use_tuple);
    if (ec) {
      if (ec == bhttp::error::header_limit) {
        request head;
        auto res = error_response(head, 431, "http.header_too_large", "request header too large");
        res.keep_alive(false);
        co_await do_write(ctx, stream, res);
      }
      break;
    }
    std::string path(path_of(hp.get().target()));
    ctx.st.count_request(path);
    bool admin = path.starts_with("/_sim/");
    auto fault = admin ? std::nullopt : ctx.faults.take(path);
    if (fault) {
      ++ctx.st.count().faults_applied;
      log::info("fault {} on {}", to_string(fault->kind), path);
    }
    if (!fault && http::beast::websocket::is_upgrade(hp.get())) {
      co_await run_ws_session(ctx, std::move(stream), hp.release());
      co_return;
    }
    if (!fault && is_streamed_upload(hp.get().method(), path)) {
      if (!co_await do_upload(ctx, stream, buf, hp)) break;
      continue;
    }

    // Every other endpoint gets its whole body, up to the limit.
    request req;
    if (is_streamed_upload(hp.get().method(), path)) {
      http::bhttp::request_header<> h = hp.get().base();
      co_await do_continue(ctx, stream, hp.get());
      auto discard = [](const char*, std::size_t) {};
      auto drained = co_await read_body_streamed(ctx, stream, buf, hp, boost::none, discard);
      if (drained) break;
      req = request{std::move(h)};
    } else {
      if (hp.content_length() && *hp.content_length() > ctx.opts.body_limit) {
        auto res = error_response(request{hp.get().base()}, 413, "http.body_too_large",
                                  "request body too large");
        res.keep_alive(false);
        co_await do_write(ctx, stream, res);
        break;
      }
      co_await do_continue(ctx, stream, hp.get());
      bhttp::request_parser<bhttp::string_body> p{std::move(hp)};
      p.body_limit(ctx.opts.body_limit);
      set_deadline(stream, ctx.opts.io_timeout);
      auto [rec, rn] = co_await bhttp::async_read(stream, buf, p, use_tuple);
      if (rec == bhttp::error::body_limit) {
        auto res = error_response(p.get(), 413, "http.body_too_large", "request body too large");
        res.keep_alive(false);
        co_await do_write(ctx, stream, res);
        break;
      }
      if (rec) break;
      req = p.release();
    }

    reply r;
    bool handled_by_fault = fault && !fault->after && fault->kind != fault_kind::slow_body;
    if (handled_by_fault) {
      if (co_await do_fatal_fault(ctx, stream, *fault)) co_return;
      r.res = fault_response(req, *fault);
    } else if (admin && !loopback_peer) {
      r.res = error_response(req, 403, "sim.forbidden", "the admin API is loopback-only");
    } else {
      r = co_await route(ctx, req);
      if (fault && fault->after && fault->kind != fault_kind::slow_body) {
        if (co_await do_fatal_fault(ctx, stream, *fault)) co_return;
        r = reply{fault_response(req, *fault)};
      }
    }
    log::debug("{} {} -> {}", req.method_string(), req.target(), r.res.result_int());
    bool keep = r.res.keep_alive();
    bool ok = false;
    if (fault && fault->kind == fault_kind::slow_body && r.download)
      ok = co_await do_download(ctx, stream, r.res, *r.download, r.with_length, fault->interval);
    else if (fault && fault->kind == fault_kind::slow_body)
      ok = co_await do_slow_write(ctx, stream, r.res, fault->interval);
    else if (r.download)
      ok = co_await do_download(ctx, stream, r.res, *r.download, r.with_length);
    else
      ok = co_await do_write(ctx, stream, r.res);
    if (!ok || !keep) break;
  }
  co_await do_close(stream);
}

}  // namespace tokenbroker::sim
