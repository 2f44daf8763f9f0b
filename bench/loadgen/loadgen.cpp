// loadgen: the benchmark's own HTTP/1.1 client, for what h2load and wrk do not do: check every
// token it receives under load, drive a refresh storm across a token turnover, mix token and
// proxy calls, and hold thousands of idle connections. One thread, one io_context, closed loop:
// each connection sends its next request when the previous answer is read. Prints one JSON
// object on stdout (bench/bench.py reads it).
#include <signal.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/time.hpp"
#include "http/beast.hpp"
#include "loadgen/options.hpp"

namespace tokenbroker::bench {
namespace {

using json = nlohmann::json;
using local = net::local::stream_protocol;
namespace beast = http::beast;
namespace bhttp = http::bhttp;
using http::tcp;

// What every connection adds to; one thread, so no locking.
struct tally {
  std::uint64_t requests = 0, errors = 0, non_2xx = 0, connect_errors = 0, bytes = 0;
  std::map<std::string, std::uint64_t> error_kinds;  // what failed, by message
  std::vector<std::uint32_t> latency_us;
  // Token checks (--verify): every 200 answer of GET /v1/token/... is parsed and judged.
  std::uint64_t tokens_checked = 0, token_bad_json = 0, token_expired = 0, token_went_back = 0;
  std::map<std::string, sys_seconds> tokens;  // distinct tokens seen, with their expires_at
};

struct run_state {
  explicit run_state(const options& o) : opt(o) {}
  const options& opt;
  tally t;
  std::vector<std::string> requests;  // serialized once, cycled through by each connection
  steady_clock::time_point end;
  steady_clock::time_point paced_from;  // --rate: when the first request is due
  bool stop = false;
  // Storm: set once any connection sees a token other than the one the storm started with.
  std::string storm_first_token;
  std::optional<steady_clock::time_point> turnover_at;
  // Storm: every connection first connects and is answered once (timed apart: it measures
  // accepting), then waits at this gate until all are, so the storm starts at once.
  std::optional<net::steady_timer> gate;
  std::size_t at_gate = 0;
  std::vector<std::uint32_t> first_answer_us;
  steady_clock::time_point gate_opened;
};

std::string serialize(const options& o, const request_spec& r) {
  std::string s = r.method + " " + r.target + " HTTP/1.1\r\nHost: bench\r\n";
  for (const auto& h : o.headers) s += h + "\r\n";
  if (r.body_bytes > 0 || r.method == "POST" || r.method == "PUT")
    s += "Content-Type: application/octet-stream\r\nContent-Length: " +
         std::to_string(r.body_bytes) + "\r\n";
  s += "\r\n";
  s.append(r.body_bytes, 'x');
  return s;
}

// One answer of GET /v1/token/NAME: well-formed, unexpired, and never older than the last one
// this connection saw (the broker must not hand out a replaced token after a newer one).
void check_token(run_state& st, const std::string& body, sys_seconds& last_expiry) {
  auto& t = st.t;
  ++t.tokens_checked;
  auto j = json::parse(body, nullptr, false);
  auto tok = j.is_object() ? j.find("access_token") : j.end();
  auto exp = j.is_object() ? j.find("expires_at") : j.end();
  if (tok == j.end() || !tok->is_string() || tok->get_ref<const std::string&>().empty() ||
      exp == j.end() || !exp->is_string()) {
    ++t.token_bad_json;
    return;
  }
  auto expires = parse_timestamp(exp->get_ref<const std::string&>());
  if (!expires) {
    ++t.token_bad_json;
    return;
  }
  if (*expires <= std::chrono::floor<std::chrono::seconds>(system_clock::now())) ++t.token_expired;
  if (*expires < last_expiry) ++t.token_went_back;
  last_expiry = std::max(last_expiry, *expires);
  const auto& value = tok->get_ref<const std::string&>();
  t.tokens.emplace(value, *expires);
  if (st.opt.mode == "storm") {
    if (st.storm_first_token.empty()) st.storm_first_token = value;
    else if (value != st.storm_first_token && !st.turnover_at) st.turnover_at = steady_clock::now();
  }
}

bool is_token_request(const std::string& target) { return target.starts_with("/v1/token/"); }

template <class Socket>
awaitable<void> connect(Socket& s, const options& o, bool& ok) {
  boost::system::error_code ec;
  if constexpr (std::is_same_v<Socket, local::socket>) {
    std::tie(ec) = co_await s.async_connect(local::endpoint(o.unix_path), use_tuple);
  } else {
    auto ep = tcp::endpoint(net::ip::make_address(o.host), o.port);
    std::tie(ec) = co_await s.async_connect(ep, use_tuple);
    if (!ec) s.set_option(tcp::no_delay(true));
  }
  ok = !ec;
}

// One keep-alive connection: requests in a closed loop until the run ends. A failed request
// counts as an error and the connection is opened again.
template <class Socket>
awaitable<void> run_connection(run_state& st, std::size_t index) {
  auto ex = co_await net::this_coro::executor;
  Socket s(ex);
  bool connected = false;
  bool answered = false;  // on the current connection
  beast::flat_buffer buf;
  sys_seconds last_expiry{};
  std::size_t next = index;  // mixed workloads: connections start at different requests
  bool gated = st.gate.has_value();
  auto started = steady_clock::now();
  // Open loop (--rate): request k of this connection is due at paced_from + (k·C + index)/rate,
  // whether or not the answer before it has come; its latency counts from then.
  std::optional<net::steady_timer> pace;
  if (st.opt.rate > 0) pace.emplace(ex);
  std::uint64_t due_count = 0;
  while (!st.stop && steady_clock::now() < st.end) {
    if (!connected) {
      s = Socket(ex);
      buf.clear();
      co_await connect(s, st.opt, connected);
      if (!connected) {
        ++st.t.connect_errors;
        continue;
      }
      answered = false;
    }
    const auto& req = st.requests[next++ % st.requests.size()];
    auto t0 = steady_clock::now();
    if (pace) {
      auto slot = static_cast<double>(due_count++ * st.opt.connections + index);
      auto due = st.paced_from + std::chrono::duration_cast<steady_clock::duration>(
                                     std::chrono::duration<double>(slot / st.opt.rate));
      if (due >= st.end) break;
      if (due > t0) {
        pace->expires_at(due);
        co_await pace->async_wait(use_tuple);
      }
      t0 = due;
    }
    auto [wec, wn] = co_await net::async_write(s, net::buffer(req), use_tuple);
    bhttp::response_parser<bhttp::string_body> p;
    p.body_limit(st.opt.max_body);
    boost::system::error_code rec;
    if (!wec) std::tie(rec, std::ignore) = co_await bhttp::async_read(s, buf, p, use_tuple);
    if (wec || rec) {
      if (st.stop || steady_clock::now() >= st.end) break;
      connected = false;
      // A unix-socket connect to a full listen queue "succeeds" in Asio (EAGAIN is taken for
      // in-progress) and the first write then fails with ENOTCONN: that is a refused connect.
      if (!answered && wec == net::error::not_connected) {
        ++st.t.connect_errors;
        continue;
      }
      ++st.t.errors;
      ++st.t.error_kinds[(wec ? "write: " + wec.message() : "read: " + rec.message())];
      continue;
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - t0);
    const auto& res = p.get();
    answered = true;
    if (gated) {
      // The first answer: from starting to connect until it arrived, then wait for the others.
      gated = false;
      auto first = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() -
                                                                         started);
      st.first_answer_us.push_back(static_cast<std::uint32_t>(first.count()));
      if (res.result_int() / 100 != 2) ++st.t.non_2xx;
      else if (st.opt.verify) check_token(st, res.body(), last_expiry);
      if (++st.at_gate == st.opt.connections) {
        st.gate_opened = steady_clock::now();
        st.gate->cancel();
      } else {
        co_await st.gate->async_wait(use_tuple);
      }
      if (!res.keep_alive()) connected = false;
      continue;
    }
    ++st.t.requests;
    st.t.latency_us.push_back(static_cast<std::uint32_t>(us.count()));
    st.t.bytes += res.body().size();
    if (res.result_int() / 100 != 2) ++st.t.non_2xx;
    else if (st.opt.verify && is_token_request(req.substr(req.find(' ') + 1)))
      check_token(st, res.body(), last_expiry);
    if (!res.keep_alive()) connected = false;
  }
}

// A blocking call to the simulator's admin API on its own io_context (before and after a run).
json sim_admin(const options& o, const std::string& method, const std::string& target,
               const std::string& body = {}) {
  net::io_context io;
  tcp::socket s(io);
  auto url = o.sim_url.substr(o.sim_url.find("//") + 2);
  auto colon = url.rfind(':');
  s.connect(tcp::endpoint(net::ip::make_address(url.substr(0, colon)),
                          static_cast<unsigned short>(std::stoi(url.substr(colon + 1)))));
  http::request req{bhttp::string_to_verb(method), target, 11};
  req.set(http::field::host, "sim");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bhttp::write(s, req);
  beast::flat_buffer buf;
  http::response res;
  bhttp::read(s, buf, res);
  return json::parse(res.body(), nullptr, false);
}

std::uint64_t sim_refreshes(const options& o) {
  auto j = sim_admin(o, "GET", "/_sim/stats");
  return j.is_object() ? j.value("refreshes", std::uint64_t{0}) : 0;
}

double percentile(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

template <class Socket>
void spawn_connections(net::io_context& io, run_state& st) {
  for (std::size_t i = 0; i < st.opt.connections; ++i)
    net::co_spawn(io, run_connection<Socket>(st, i), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
}

// Refused connects an idle connection tries again before giving up.
constexpr int max_idle_attempts = 100;

// Holds `connections` open after one request each, until SIGTERM/SIGINT; prints "ready N".
template <class Socket>
awaitable<void> hold_idle(run_state& st, std::vector<Socket>& socks, std::size_t& ready) {
  auto ex = co_await net::this_coro::executor;
  auto& s = socks.emplace_back(ex);
  for (int attempt = 1;; ++attempt) {
    bool ok = false;
    s = Socket(ex);
    co_await connect(s, st.opt, ok);
    boost::system::error_code wec, rec;
    if (ok) {
      auto first = net::buffer(st.requests.front());
      std::tie(wec, std::ignore) = co_await net::async_write(s, first, use_tuple);
    }
    // Thousands of simultaneous connects overflow the listen queue: some are refused (a failed
    // connect, or ENOTCONN on the first write of a unix socket, see run_connection). They are
    // counted and tried again once the server has taken the queued ones.
    if (!ok || wec == net::error::not_connected) {
      ++st.t.connect_errors;
      if (attempt == max_idle_attempts) co_return;
      net::steady_timer pause(ex, std::chrono::milliseconds{20});
      co_await pause.async_wait(use_tuple);
      continue;
    }
    beast::flat_buffer buf;
    bhttp::response_parser<bhttp::string_body> p;
    if (!wec) std::tie(rec, std::ignore) = co_await bhttp::async_read(s, buf, p, use_tuple);
    if (wec || rec) ++st.t.errors;
    else ++ready;
    co_return;
  }
}

template <class Socket>
int run_idle(run_state& st) {
  net::io_context io{1};
  std::vector<Socket> socks;
  socks.reserve(st.opt.connections);
  std::size_t ready = 0;
  for (std::size_t i = 0; i < st.opt.connections; ++i)
    net::co_spawn(io, hold_idle<Socket>(st, socks, ready), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  io.run();
  io.restart();
  std::printf("ready %zu\n", ready);
  std::fflush(stdout);
  net::signal_set sig(io, SIGTERM, SIGINT);
  sig.async_wait([](auto, int) {});
  io.run();
  std::cout << json{{"mode", "idle"}, {"connections", ready},
                    {"connect_errors", st.t.connect_errors}, {"errors", st.t.errors}}
            << "\n";
  return ready == st.opt.connections ? 0 : 1;
}

template <class Socket>
int run_load(run_state& st) {
  net::io_context io{1};
  std::uint64_t refreshes_before = 0;
  if (!st.opt.sim_url.empty()) refreshes_before = sim_refreshes(st.opt);
  auto start = steady_clock::now();
  // Open loop: the connections get 100 ms to connect before the first request is due.
  if (st.opt.rate > 0) start = st.paced_from = start + 100ms;
  st.end = start + st.opt.duration;
  if (st.opt.mode == "storm") {
    st.gate.emplace(io, steady_clock::time_point::max());
    // The storm ends one second after the token turned over (or at --duration).
    net::co_spawn(io, [&st]() -> awaitable<void> {
      net::steady_timer t(co_await net::this_coro::executor);
      while (steady_clock::now() < st.end) {
        // Not before the gate opened: a turnover while clients connect ends the storm 1 s in.
        if (st.turnover_at && st.at_gate == st.opt.connections)
          st.end = std::min(st.end, std::max(*st.turnover_at, st.gate_opened) + 1s);
        t.expires_after(10ms);
        co_await t.async_wait(net::use_awaitable);
      }
      st.gate->cancel();  // clients still waiting for the others to connect give up
    }, [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }
  spawn_connections<Socket>(io, st);
  io.run();
  auto stopped = steady_clock::now();
  if (st.gate && st.at_gate == st.opt.connections) start = st.gate_opened;  // the storm itself
  auto elapsed = std::chrono::duration<double>(stopped - start).count();
  auto& t = st.t;
  json out{{"mode", st.opt.mode},
           {"connections", st.opt.connections},
           {"seconds", elapsed},
           {"requests", t.requests},
           {"rps", static_cast<double>(t.requests) / elapsed},
           {"offered_rps", st.opt.rate},
           {"errors", t.errors},
           {"connect_errors", t.connect_errors},
           {"error_kinds", t.error_kinds},
           {"non_2xx", t.non_2xx},
           {"bytes", t.bytes},
           {"p50_us", percentile(t.latency_us, 0.50)},
           {"p90_us", percentile(t.latency_us, 0.90)},
           {"p99_us", percentile(t.latency_us, 0.99)},
           {"max_us", percentile(t.latency_us, 1.0)}};
  if (st.gate) {
    out["clients_answered_once"] = st.at_gate;
    out["first_answer_p50_us"] = percentile(st.first_answer_us, 0.50);
    out["first_answer_p99_us"] = percentile(st.first_answer_us, 0.99);
    out["first_answer_max_us"] = percentile(st.first_answer_us, 1.0);
  }
  if (st.opt.verify) {
    out["tokens_checked"] = t.tokens_checked;
    out["token_bad_json"] = t.token_bad_json;
    out["token_expired"] = t.token_expired;
    out["token_went_back"] = t.token_went_back;
    out["distinct_tokens"] = t.tokens.size();
    out["turnover_seen"] = st.turnover_at.has_value();
  }
  if (!st.opt.sim_url.empty()) {
    out["sim_refreshes"] = sim_refreshes(st.opt) - refreshes_before;
    // Every distinct token must be one the simulator issued for this grant: the newest still
    // valid, older ones superseded by a refresh (never unknown, revoked or expired).
    std::map<std::string, std::uint64_t> verdicts;
    std::vector<std::pair<sys_seconds, std::string>> by_age;
    for (const auto& [tok, exp] : t.tokens) by_age.emplace_back(exp, tok);
    std::sort(by_age.begin(), by_age.end());
    std::uint64_t bad = 0;
    for (std::size_t i = 0; i < by_age.size(); ++i) {
      auto v = sim_admin(st.opt, "POST", "/_sim/check", json{{"token", by_age[i].second}}.dump());
      auto reason = v.is_object() ? v.value("reason", std::string("?")) : std::string("?");
      ++verdicts[reason];
      bool newest = i + 1 == by_age.size();
      if (newest ? reason != "ok" : (reason != "superseded" && reason != "ok")) ++bad;
    }
    out["sim_verdicts"] = verdicts;
    out["sim_rejected_tokens"] = bad;
  }
  std::cout << out << "\n";
  return 0;
}

template <class Socket>
int run(const options& o) {
  run_state st{o};
  for (const auto& r : o.requests) st.requests.push_back(serialize(o, r));
  st.t.latency_us.reserve(1 << 20);
  if (o.mode == "idle") return run_idle<Socket>(st);
  return run_load<Socket>(st);
}

}  // namespace
}  // namespace tokenbroker::bench

int main(int argc, char** argv) {
  using namespace tokenbroker::bench;
  ::signal(SIGPIPE, SIG_IGN);
  auto o = parse_options(argc, argv);
  if (!o) return 2;
  try {
    if (!o->unix_path.empty()) return run<local::socket>(*o);
    return run<tcp::socket>(*o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
}
