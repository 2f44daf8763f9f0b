#include "app/app.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <random>

#include "app/api.hpp"
#include "app/providers.hpp"
#include "app/proxy.hpp"
#include "app/sd_notify.hpp"
#include "broker/registry.hpp"
#include "cluster/etcd_store.hpp"
#include "core/log.hpp"
#include "core/spawn.hpp"
#include "http/server.hpp"
#include "store/file_store.hpp"
#include "store/store.hpp"

namespace tokenbroker::app {
namespace {

struct daemon_state {
  net::io_context io{1};
  config::config cfg;
  metrics::registry metrics;
  std::unique_ptr<store::state_store> store;
  std::vector<std::unique_ptr<http::client>> clients;
  broker::registry registry;
  std::unique_ptr<api> local_api;
  std::unique_ptr<proxy> local_proxy;
  std::unique_ptr<http::server> server;
  bool stopping = false;
};

awaitable<void> run_watchdog(std::chrono::microseconds interval) {
  net::steady_timer t(co_await net::this_coro::executor);
  for (;;) {
    notify("WATCHDOG=1");
    t.expires_after(interval / 2);
    co_await t.async_wait(net::use_awaitable);
  }
}

// True while some credential has a refresh or grant in flight.
bool refresh_in_flight(daemon_state& d) {
  for (auto& [name, e] : d.registry.all())
    if (e.cred->attempt_in_flight()) return true;
  return false;
}

awaitable<void> drain_and_stop(daemon_state& d, std::chrono::seconds deadline) {
  notify("STOPPING=1");
  d.server->stop();
  net::steady_timer t(co_await net::this_coro::executor);
  auto until = steady_clock::now() + deadline;
  // In-flight requests finish; idle keep-alive connections are dropped at their next turn. The
  // credentials keep running meanwhile: callers waiting on a refresh get its token, and a
  // rotated refresh token is persisted instead of being lost mid-call.
  while ((d.server->connections() > 0 || refresh_in_flight(d)) && steady_clock::now() < until) {
    t.expires_after(50ms);
    co_await t.async_wait(use_tuple);
  }
  if (d.server->connections() > 0)
    log::warn("stopping with {} connections still open", d.server->connections());
  if (refresh_in_flight(d)) log::warn("stopping with a refresh still in flight");
  d.registry.stop_all();
  // The shared store's watch and lease keepers end once their connections are closed.
  d.store->stop();
  auto store_until = steady_clock::now() + 2s;
  while (!d.store->idle() && steady_clock::now() < store_until) {
    t.expires_after(10ms);
    co_await t.async_wait(use_tuple);
  }
  d.io.stop();
}

awaitable<void> run_signals(daemon_state& d) {
  net::signal_set signals(d.io, SIGTERM, SIGINT, SIGHUP);
  for (;;) {
    auto [ec, sig] = co_await signals.async_wait(use_tuple);
    if (ec) co_return;
    if (sig == SIGHUP) {
      notify("RELOADING=1");
      auto fresh = config::load(d.cfg.path);
      if (!fresh) log::error("reload refused, keeping the running config:\n{}", fresh.error().message);
      else log::warn("configuration {} is valid; applying changes needs a restart in this version",
                     d.cfg.path);
      notify("READY=1");
      continue;
    }
    log::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    co_await drain_and_stop(d, std::chrono::seconds{10});
    co_return;
  }
}

// Socket activation: sockets passed by systemd replace server.socket and server.listen (which
// are then not used); the .socket unit owns their paths, modes and addresses.
result<void> adopt_passed(daemon_state& d, const std::vector<passed_socket>& passed) {
  for (const auto& p : passed) {
    if (p.unix_socket) {
      auto path = d.server->adopt_unix(p.fd);
      if (!path) return path.error();
      log::info("listening on unix:{} (socket activation)", *path);
      continue;
    }
    auto bound = d.server->adopt_tcp(p.fd);
    if (!bound) return bound.error();
    // The same guard as server.listen: tokens leave the host only by explicit opt-in.
    if (!bound->address().is_loopback() && !d.cfg.server.listen_non_loopback)
      return make_error(errc::invalid_argument,
                        "passed TCP socket " + bound->address().to_string() +
                            " is not a loopback address; set server.listen_public = true in " +
                            d.cfg.path + " to expose tokens beyond this host");
    log::info("listening on {}:{} (socket activation)", bound->address().to_string(),
              bound->port());
  }
  log::info("socket activation: {} socket(s) passed; server.socket and server.listen are not used",
            passed.size());
  return {};
}

result<void> open_listeners(daemon_state& d) {
  auto passed = passed_sockets();
  if (!passed) return passed.error();
  if (!passed->empty()) return adopt_passed(d, *passed);
  if (auto r = d.server->listen_unix(d.cfg.server.socket, d.cfg.server.socket_mode); !r)
    return r.error();
  log::info("listening on unix:{}", d.cfg.server.socket);
  if (d.cfg.server.listen_host) {
    boost::system::error_code ec;
    auto addr = net::ip::make_address(*d.cfg.server.listen_host, ec);
    auto bound = d.server->listen_tcp(http::tcp::endpoint(addr, d.cfg.server.listen_port));
    if (!bound) return bound.error();
    log::info("listening on {}:{}", bound->address().to_string(), bound->port());
  }
  return {};
}

// [cluster]: the state store lives in etcd, shared by every replica with the same prefix.
result<std::unique_ptr<store::state_store>> open_cluster_store(daemon_state& d, secret key) {
  const auto& cl = *d.cfg.cluster;
  cluster::etcd_options eo;
  eo.endpoints = cl.etcd;
  eo.username = cl.username;
  eo.password = cl.password;
  eo.ca_file = cl.ca_file;
  eo.cert_file = cl.cert_file;
  eo.key_file = cl.key_file;
  eo.verify_tls = !cl.tls_skip_verify;
  std::unique_ptr<cluster::etcd_client> client;
  try {
    client = std::make_unique<cluster::etcd_client>(d.io.get_executor(), std::move(eo));
  } catch (const std::exception& e) {
    return make_error(errc::invalid_argument, d.cfg.path + ": [cluster]: " + e.what());
  }
  cluster::etcd_store_options so;
  so.prefix = cl.prefix;
  so.replica_id = cl.replica_id;
  if (so.replica_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    so.replica_id = std::string(host) + ":" + std::to_string(::getpid());
  }
  so.lock_ttl = std::chrono::duration_cast<std::chrono::seconds>(cl.lock_ttl);
  std::string endpoints;
  for (const auto& u : cl.etcd) endpoints += (endpoints.empty() ? "" : ", ") + u.origin();
  log::info("tokens are shared through etcd ({}) under {} as replica {}", endpoints, so.prefix,
            so.replica_id);
  return std::unique_ptr<store::state_store>(std::make_unique<cluster::etcd_store>(
      d.io.get_executor(), std::move(client), std::move(key), std::move(so), d.metrics));
}

}  // namespace

int run_daemon(config::config cfg) {
  // Every client connection is a descriptor: use the whole hard limit systemd or the shell gives.
  if (rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  daemon_state d;
  d.cfg = std::move(cfg);
  for (const auto& w : d.cfg.warnings) log::warn("{}", w);
  if (d.cfg.server.state_key_file.empty()) {
    log::warn("{}: server.state_key_file is not set: tokens are kept in memory only, and a "
              "restart needs a new grant", d.cfg.path);
    d.store = std::make_unique<store::memory_store>();
  } else {
    auto key = store::read_state_key(d.cfg.server.state_key_file);
    if (!key) {
      log::error("{}: server.state_key_file: {}", d.cfg.path, key.error().message);
      return 1;
    }
    if (d.cfg.cluster) {
      auto cs = open_cluster_store(d, std::move(*key));
      if (!cs) {
        log::error("{}", cs.error().message);
        return 1;
      }
      d.store = std::move(*cs);
    } else {
      auto fs = store::file_store::open_dir(d.cfg.server.state_dir, std::move(*key));
      if (!fs) {
        log::error("{}: server.state_dir: {}", d.cfg.path, fs.error().message);
        return 1;
      }
      d.store = std::move(*fs);
      log::info("tokens persist encrypted in {}", d.cfg.server.state_dir);
    }
  }

  std::random_device rd;
  std::map<std::string, proxy_target, std::less<>> targets;
  for (const auto& c : d.cfg.credentials) {
    http::client_options co;
    co.ca_file = c.ca_file;
    co.verify_tls = !c.tls_skip_verify;
    std::unique_ptr<http::client> client;
    try {
      client = std::make_unique<http::client>(d.io.get_executor(), co);
    } catch (const std::exception& e) {
      log::error("credential {}: {}", c.name, e.what());
      return 1;
    }
    broker::credential_options o;
    o.name = c.name;
    o.provider_name = c.provider == config::provider_kind::privicore ? "privicore" : "oauth2";
    o.policy.margin = c.refresh_margin;
    auto p = make_provider(d.io.get_executor(), c, *client);
    broker::entry e;
    e.cred = std::make_unique<broker::credential>(d.io.get_executor(), o, std::move(p), *d.store,
                                                  d.metrics, (std::uint64_t(rd()) << 32) | rd());
    e.access.uids = c.allow_uids;
    e.access.gids = c.allow_gids;
    if (c.api_url) e.api_url = c.api_url->origin() + c.api_url->path;
    e.inject_header = c.inject_header;
    e.inject_format = c.inject_format;
    d.registry.add(c.name, std::move(e));
    if (c.api_url) targets[c.name] = proxy_target{*c.api_url, client.get(), c.timeout};
    d.clients.push_back(std::move(client));
  }

  api_options ao;
  ao.token_wait = d.cfg.server.token_wait;
  ao.daemon_uid = ::getuid();
  d.local_api = std::make_unique<api>(d.registry, d.metrics, ao);
  proxy_options po;
  po.token_wait = d.cfg.server.token_wait;
  d.local_proxy =
      std::make_unique<proxy>(*d.local_api, d.registry, d.metrics, std::move(targets), po);
  http::server_limits limits;
  limits.max_connections = d.cfg.server.max_connections;
  http::stream_route streaming{&proxy::selects, [&d](http::streamed_request& sr) {
                                 return d.local_proxy->handle(sr);
                               }};
  d.server = std::make_unique<http::server>(
      d.io.get_executor(), limits,
      [&d](http::request& req, const http::peer_info& peer) { return d.local_api->handle(req, peer); },
      std::move(streaming));

  if (auto r = open_listeners(d); !r) {
    log::error("{}", r.error().message);
    return 1;
  }

  d.store->subscribe([&d](const std::string& name, const broker::token_bundle& b) {
    if (auto* e = d.registry.find(name)) e->cred->adopt_shared(b);
  });
  d.store->start();
  d.registry.start_all();
  d.server->start();
  spawn_logged(d.io.get_executor(), "signals", run_signals(d));
  if (auto wd = watchdog_interval()) spawn_logged(d.io.get_executor(), "watchdog", run_watchdog(*wd));
  notify("READY=1");
  log::info("tokenbroker {} ready with {} credential(s)", TOKENBROKER_VERSION,
            d.cfg.credentials.size());
  d.io.run();
  log::info("stopped");
  return 0;
}

}  // namespace tokenbroker::app
