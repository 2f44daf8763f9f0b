// privicore-sim: a stateful, single-threaded simulator of the Privicore API for tests.
// Prints exactly one line on stdout when ready: "privicore-sim listening on http://HOST:PORT".
#include <sys/resource.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "context.hpp"
#include "core/log.hpp"
#include "core/spawn.hpp"
#include "server.hpp"
#include "tls.hpp"

using namespace tokenbroker;
using namespace tokenbroker::sim;

namespace {

[[noreturn]] void fatal(const std::string& message) {
  std::fprintf(stderr, "privicore-sim: %s\n", message.c_str());
  std::exit(2);
}

// 1000+ concurrent connections need more descriptors than the usual soft limit of 1024.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

awaitable<void> run_signals(net::io_context& ioc, http::tcp::acceptor& acceptor) {
  net::signal_set signals(co_await net::this_coro::executor, SIGINT, SIGTERM);
  auto [ec, sig] = co_await signals.async_wait(use_tuple);
  if (ec) co_return;
  log::info("signal {}: shutting down", sig);
  boost::system::error_code ignored;
  acceptor.close(ignored);
  ioc.stop();
}

void seed(context& ctx) {
  for (const auto& p : ctx.opts.profiles) ctx.st.add_profile(p.username, p.password);
  for (const auto& a : ctx.opts.apps)
    if (auto r = ctx.st.add_app(a.owner, a.client_id, a.client_secret); !r)
      fatal(r.error().message);
  for (const auto& f : ctx.opts.faults)
    if (auto err = ctx.faults.add(f)) fatal("--fault " + f.dump() + ": " + *err);
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<options> opts;
  try {
    opts = parse_options(argc, argv);
  } catch (const std::exception& e) {
    fatal(e.what());
  }
  if (!opts) return 0;
  log::configure(opts->log_level, opts->log_format);
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  // Declared before the io_context: coroutine frames destroyed with it still reference these.
  context ctx(*opts, [] { return std::chrono::system_clock::now(); });
  seed(ctx);
  http::ssl::context tls_ctx(http::ssl::context::tls_server);
  if (opts->tls) {
    try {
      auto certs = generate_certificates();
      use_certificates(tls_ctx, certs);
      if (!opts->ca_out.empty()) {
        std::ofstream out(opts->ca_out, std::ios::trunc);
        out << certs.ca_pem;
        out.close();
        if (!out) fatal("--ca-out " + opts->ca_out + ": cannot write");
      }
    } catch (const std::exception& e) {
      fatal(e.what());
    }
  }

  net::io_context ioc{1};
  http::tcp::acceptor acceptor(ioc);
  try {
    http::tcp::endpoint ep(net::ip::make_address(opts->listen_host), opts->listen_port);
    acceptor.open(ep.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(net::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    fatal("--listen " + opts->listen_host + ":" + std::to_string(opts->listen_port) + ": " +
          e.what());
  }
  auto local = acceptor.local_endpoint();
  auto host = local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                      : local.address().to_string();
  std::printf("privicore-sim listening on %s://%s:%u\n", opts->tls ? "https" : "http", host.c_str(),
              static_cast<unsigned>(local.port()));
  std::fflush(stdout);
  log::info("listening on {}:{} (tls {}), {} profiles, {} apps seeded", host, local.port(),
            opts->tls, opts->profiles.size(), opts->apps.size());

  spawn_logged(ioc.get_executor(), "listener",
               run_listener(ctx, acceptor, opts->tls ? &tls_ctx : nullptr));
  spawn_logged(ioc.get_executor(), "signals", run_signals(ioc, acceptor));
  ioc.run();
  log::info("stopped");
  return 0;
}
