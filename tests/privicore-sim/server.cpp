#include "server.hpp"

#include "core/log.hpp"
#include "core/spawn.hpp"
#include "session.hpp"

namespace tokenbroker::sim {
namespace {

using http::tcp;
namespace beast = http::beast;

awaitable<void> run_connection(context& ctx, tcp::socket sock, http::ssl::context* tls,
                               bool loopback_peer) {
  auto& counts = ctx.st.count();
  ++counts.connections;
  ++counts.open_connections;
  struct release {
    counters& c;
    ~release() { --c.open_connections; }
  } guard{counts};
  boost::system::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  if (!tls) {
    co_await run_session(ctx, beast::tcp_stream(std::move(sock)), loopback_peer);
    co_return;
  }
  http::ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *tls);
  stream.next_layer().expires_after(ctx.opts.io_timeout);
  auto [hec] = co_await stream.async_handshake(http::ssl::stream_base::server, use_tuple);
  if (hec) {
    log::debug("TLS handshake failed: {}", hec.message());
    co_return;
  }
  co_await run_session(ctx, std::move(stream), loopback_peer);
}

}  // namespace

awaitable<void> run_listener(context& ctx, tcp::acceptor& acceptor, http::ssl::context* tls) {
  auto ex = co_await net::this_coro::executor;
  net::steady_timer backoff(ex);
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(use_tuple);
    if (ec == net::error::operation_aborted || !acceptor.is_open()) break;
    if (ec) {
      // Out of descriptors and the like: pause instead of spinning.
      log::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds{100});
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    if (ctx.st.count().open_connections >= ctx.opts.max_connections) {
      log::warn("connection limit {} reached; closing a new connection", ctx.opts.max_connections);
      sock.close(ec);
      continue;
    }
    boost::system::error_code rec;
    auto peer = sock.remote_endpoint(rec);
    bool loopback = !rec && peer.address().is_loopback();
    spawn_logged(ex, "session", run_connection(ctx, std::move(sock), tls, loopback));
  }
}

}  // namespace tokenbroker::sim
