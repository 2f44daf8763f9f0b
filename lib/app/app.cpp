#include "app/app.hpp"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/signal_set.hpp>
#include <random>

#include "app/api.hpp"
#include "app/providers.hpp"
#include "app/proxy.hpp"
#include "app/reload.hpp"
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
  // Each credential's connection pool, shared with its provider and its proxy target.
  std::map<std::string, std::shared_ptr<http::client>, std::less<>> clients;
  broker::registry registry;
  std::unique_ptr<api> local_api;
  std::unique_ptr<proxy> local_proxy;
  std::unique_ptr<http::server> server;
  std::random_device rd;
  bool stopping = false;
};

// A connection pool with `c`'s CAs and TLS policy. Throws std::runtime_error when ca_file
// cannot be loaded.
std::shared_ptr<http::client> make_client(daemon_state& d, const config::credential_config& c) {
  http::client_options co;
  co.ca_file = c.ca_file;
  co.verify_tls = !c.tls_skip_verify;
  return std::make_shared<http::client>(d.io.get_executor(), co);
}

// `c`'s provider on `client`, which it keeps alive. A reload may drop a provider while its
// Privicore ack channel is still closing on the pool's TLS context, so the pool outlives it by
// half a minute.
std::shared_ptr<broker::provider> make_shared_provider(daemon_state& d,
                                                       const config::credential_config& c,
                                                       std::shared_ptr<http::client> client) {
  auto p = make_provider(d.io.get_executor(), c, *client);
  auto ex = d.io.get_executor();
  return std::shared_ptr<broker::provider>(p.release(), [client, ex](broker::provider* q) {
    delete q;
    auto linger = std::make_shared<net::steady_timer>(ex, std::chrono::seconds{30});
    linger->async_wait([linger, client](const boost::system::error_code&) {});
  });
}

std::string provider_name(const config::credential_config& c) {
  return c.provider == config::provider_kind::privicore ? "privicore" : "oauth2";
}

broker::entry make_entry(std::shared_ptr<broker::credential> cred,
                         const config::credential_config& c) {
  broker::entry e;
  e.cred = std::move(cred);
  e.access.uids = c.allow_uids;
  e.access.gids = c.allow_gids;
  e.inject_header = c.inject_header;
  e.inject_format = c.inject_format;
  return e;
}

// Builds credential `c` on `client` and puts it in service (not started).
std::shared_ptr<broker::credential> add_credential(daemon_state& d,
                                                   const config::credential_config& c,
                                                   std::shared_ptr<http::client> client) {
  broker::credential_options o;
  o.name = c.name;
  o.provider_name = provider_name(c);
  o.policy.margin = c.refresh_margin;
  auto cred = std::make_shared<broker::credential>(
      d.io.get_executor(), o, make_shared_provider(d, c, client), *d.store, d.metrics,
      (std::uint64_t(d.rd()) << 32) | d.rd());
  d.registry.put(c.name, make_entry(cred, c));
  d.clients.insert_or_assign(c.name, std::move(client));
  return cred;
}

proxy_targets make_targets(const daemon_state& d) {
  proxy_targets targets;
  for (const auto& c : d.cfg.credentials)
    if (c.api_url)
      targets[c.name] = std::make_shared<const proxy_target>(
          proxy_target{*c.api_url, d.clients.at(c.name), c.timeout});
  return targets;
}

api_options make_api_options(const daemon_state& d) {
  api_options ao;
  ao.token_wait = d.cfg.server.token_wait;
  ao.daemon_uid = ::getuid();
  if (d.store->shared()) ao.etcd_up = [store = d.store.get()] { return store->backend_up(); };
  return ao;
}

std::string join(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// Applies `fresh` in one step on the io thread (INTERFACE.md "Reload"); no request sees half of
// it. False, with nothing changed, when a new connection pool cannot be built.
bool apply_reload(daemon_state& d, config::config fresh) {
  // 1. What can fail comes first: the new connection pools.
  std::map<std::string, credential_change, std::less<>> changes;
  std::map<std::string, std::shared_ptr<http::client>, std::less<>> pools;
  for (const auto& c : fresh.credentials) {
    const auto* was = d.cfg.find(c.name);
    if (was) changes[c.name] = compare(*was, c);
    if (was && !changes[c.name].new_client) continue;
    try {
      pools[c.name] = make_client(d, c);
    } catch (const std::exception& e) {
      log::error("reload refused, keeping the running config: credential {}: {}", c.name, e.what());
      return false;
    }
  }
  for (const auto& w : fresh.warnings) log::warn("{}", w);

  // 2. Removed: out of service now; requests holding them finish, their saved state stays.
  for (const auto& c : d.cfg.credentials) {
    if (fresh.find(c.name)) continue;
    d.registry.retire(c.name);
    d.clients.erase(c.name);
    log::info("credential {}: removed from the configuration (its saved state is kept)", c.name);
  }
  // 3. Added and changed.
  int added = 0, changed = 0;
  for (const auto& c : fresh.credentials) {
    auto it = changes.find(c.name);
    if (it == changes.end()) {
      auto after = d.registry.retiring(c.name);
      add_credential(d, c, pools.at(c.name))->start(std::move(after));
      log::info("credential {}: added", c.name);
      ++added;
      continue;
    }
    const auto& ch = it->second;
    if (!ch.any()) continue;
    ++changed;
    auto cred = d.registry.find(c.name)->cred;
    if (ch.new_client) d.clients.insert_or_assign(c.name, pools.at(c.name));
    std::shared_ptr<broker::provider> p;
    if (ch.new_provider) p = make_shared_provider(d, c, d.clients.at(c.name));
    broker::schedule_policy policy;
    policy.margin = c.refresh_margin;
    cred->reconfigure(policy, provider_name(c), std::move(p), ch.new_grant);
    d.registry.put(c.name, make_entry(cred, c));
    log::info("credential {}: {} changed; {}", c.name, join(ch.keys),
              ch.new_grant ? "the tokens held belong to the previous grant: dropped, granting again"
              : ch.new_provider ? "provider rebuilt between refreshes, tokens kept"
                                : "applied, tokens kept");
  }

  // 4. [server]: what needs a restart keeps its running value.
  auto restart = restart_only_changes(d.cfg, fresh);
  if (!restart.empty())
    log::warn("{}: {} changed: only a restart applies that; running with the previous value(s)",
              d.cfg.path, join(restart));
  fresh.server = applied_server(d.cfg.server, fresh.server);
  fresh.cluster = d.cfg.cluster;
  d.cfg = std::move(fresh);
  d.local_api->set_options(make_api_options(d));
  d.local_proxy->reconfigure(make_targets(d), d.cfg.server.token_wait);
  d.registry.prune();
  log::info("configuration {} reloaded: {} credential(s), {} added, {} changed", d.cfg.path,
            d.cfg.credentials.size(), added, changed);
  return true;
}

awaitable<void> run_watchdog(std::chrono::microseconds interval) {
  net::steady_timer t(co_await net::this_coro::executor);
  for (;;) {
    notify("WATCHDOG=1");
    t.expires_after(interval / 2);
    co_await t.async_wait(net::use_awaitable);
  }
}

// Gives the heap's whole free pages back to the system once a burst of connections has closed:
// glibc returns only the top of the heap by itself. Most of what a burst freed stays resident
// all the same, in pieces smaller than a page between objects that outlive the connections
// (Asio keeps each socket's reactor state for reuse): after 10,000 idle connections this
// returns about 3 of 45 MiB (bench/analysis.md).
awaitable<void> run_heap_trim(daemon_state& d) {
  net::steady_timer t(co_await net::this_coro::executor);
  for (;;) {
    t.expires_after(10s);
    co_await t.async_wait(net::use_awaitable);
    auto peak = d.server->take_peak_connections();
    if (peak >= 2 * d.server->connections() + 64) ::malloc_trim(0);
  }
}

// True while some credential has a refresh or grant in flight.
bool refresh_in_flight(daemon_state& d) {
  for (const auto& [name, e] : d.registry.all())
    if (e->cred->attempt_in_flight()) return true;
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
      log::info("received SIGHUP, reloading {}", d.cfg.path);
      auto fresh = config::load(d.cfg.path);
      bool ok = false;
      if (!fresh)
        log::error("reload refused, keeping the running config:\n{}", fresh.error().message);
      else
        ok = apply_reload(d, std::move(*fresh));
      d.metrics.config_reload(ok ? "ok" : "error");
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
  // A reader that went away makes a write fail with EPIPE, never end the daemon. Asio's writes
  // pass MSG_NOSIGNAL; splice(2), which streams proxied bodies, has no such flag.
  ::signal(SIGPIPE, SIG_IGN);
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

  for (const auto& c : d.cfg.credentials) {
    std::shared_ptr<http::client> client;
    try {
      client = make_client(d, c);
    } catch (const std::exception& e) {
      log::error("credential {}: {}", c.name, e.what());
      return 1;
    }
    add_credential(d, c, std::move(client));
  }

  d.local_api = std::make_unique<api>(d.registry, d.metrics, make_api_options(d));
  proxy_options po;
  po.token_wait = d.cfg.server.token_wait;
  d.local_proxy = std::make_unique<proxy>(*d.local_api, d.registry, d.metrics, make_targets(d), po);
  http::server_limits limits;
  limits.max_connections = d.cfg.server.max_connections;
  http::stream_route streaming{&proxy::selects, [&d](http::streamed_request& sr) {
                                 return d.local_proxy->handle(sr);
                               }};
  d.server = std::make_unique<http::server>(
      d.io.get_executor(), limits,
      [&d](http::request& req, const http::peer_info& peer) { return d.local_api->handle(req, peer); },
      std::move(streaming));
  d.server->set_quick([&d](const http::request_view& req, const http::peer_info& peer) {
    return d.local_api->try_handle(req, peer);
  }, std::string(api::quick_prefix));

  if (auto r = open_listeners(d); !r) {
    log::error("{}", r.error().message);
    return 1;
  }

  d.store->subscribe([&d](const std::string& name, const broker::token_bundle& b) {
    if (auto e = d.registry.find(name)) e->cred->adopt_shared(b);
  });
  d.store->start();
  d.registry.start_all();
  d.server->start();
  spawn_logged(d.io.get_executor(), "signals", run_signals(d));
  if (auto wd = watchdog_interval()) spawn_logged(d.io.get_executor(), "watchdog", run_watchdog(*wd));
  spawn_logged(d.io.get_executor(), "heap trim", run_heap_trim(d));
  notify("READY=1");
  log::info("tokenbroker {} ready with {} credential(s)", TOKENBROKER_VERSION,
            d.cfg.credentials.size());
  d.io.run();
  log::info("stopped");
  return 0;
}

}  // namespace tokenbroker::app
