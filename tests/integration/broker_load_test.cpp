// 1000 concurrent clients across a refresh: one refresh, no error, no token the simulator refuses.
#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using local = net::local::stream_protocol;

namespace {

struct tally {
  int token_ok = 0;
  int token_errors = 0;
  int used_ok = 0;
  int refused_by_simulator = 0;
  int transport_errors = 0;
  std::string first_error;
};

// One client: a keep-alive connection to the broker and one to the simulator; fetch a token,
// use it at once on the simulator's data plane, repeat until `until`.
net::awaitable<void> run_client(std::string sock, std::uint16_t sim_port,
                                std::chrono::steady_clock::time_point until, tally& t) {
  auto ex = co_await net::this_coro::executor;
  auto tok = net::as_tuple(net::use_awaitable);
  local::socket broker(ex);
  auto [cec] = co_await broker.async_connect(local::endpoint(sock), tok);
  beast::tcp_stream sim(ex);
  auto [sec, ep] = co_await sim.async_connect(
      std::array{net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), sim_port)}, tok);
  if (cec || sec) {
    ++t.transport_errors;
    if (t.first_error.empty()) t.first_error = "connect: " + (cec ? cec : sec).message();
    co_return;
  }
  beast::flat_buffer bb, sb;
  while (std::chrono::steady_clock::now() < until) {
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/v1/token/privicore", 11};
    req.set(bhttp::field::host, "localhost");
    bhttp::response<bhttp::string_body> res;
    auto [wec, wn] = co_await bhttp::async_write(broker, req, tok);
    auto [rec, rn] = co_await bhttp::async_read(broker, bb, res, tok);
    if (wec || rec) {
      ++t.transport_errors;
      if (t.first_error.empty()) t.first_error = "broker: " + (wec ? wec : rec).message();
      co_return;
    }
    if (res.result_int() != 200) {
      ++t.token_errors;
      if (t.first_error.empty()) t.first_error = res.body();
      continue;
    }
    ++t.token_ok;
    auto token = nlohmann::json::parse(res.body())["access_token"].get<std::string>();
    bhttp::request<bhttp::empty_body> use{bhttp::verb::get, "/data-token/echo", 11};
    use.set(bhttp::field::host, "127.0.0.1");
    use.set("X-DPT-AUTHORIZATION", token);
    bhttp::response<bhttp::string_body> used;
    auto [uwec, uwn] = co_await bhttp::async_write(sim, use, tok);
    auto [urec, urn] = co_await bhttp::async_read(sim, sb, used, tok);
    if (uwec || urec) {
      ++t.transport_errors;
      if (t.first_error.empty()) t.first_error = "simulator: " + (uwec ? uwec : urec).message();
      co_return;
    }
    if (used.result_int() == 200) ++t.used_ok;
    else ++t.refused_by_simulator;
  }
}

}  // namespace

TEST_CASE("a_thousand_concurrent_clients_across_a_refresh_cause_exactly_one_refresh") {
  // 10 s tokens: the broker refreshes at half-life ±10 %, 4.0-5.5 s after the grant (expiresAt
  // has whole-second precision, so a token may look up to 1 s shorter); the next refresh comes
  // ≥ 8.1 s after the grant, well after the 6.5 s window. The replaced token stays valid until it
  // expires, so only expiry could make a token bad.
  sim_fixture sim(sim_flags_for_broker({"--access-token-ttl", "10s", "--invalidate-old-access",
                                        "false"}));
  broker_options o;
  o.log_level = "info";
  broker_fixture b(sim, o);
  b.token();  // the grant
  auto granted = std::chrono::steady_clock::now();
  auto before = sim.stats();

  net::io_context io;
  tally t;
  auto until = granted + 6500ms;
  for (int i = 0; i < 1000; ++i)
    net::co_spawn(io, run_client(b.socket_path(), sim.port(), until, t),
                  [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run();

  auto after = sim.stats();
  INFO("first error: " << t.first_error);
  CHECK(t.transport_errors == 0);
  CHECK(t.token_errors == 0);
  CHECK(t.refused_by_simulator == 0);
  CHECK(t.token_ok == t.used_ok);
  CHECK(t.token_ok >= 1000);
  CHECK(after["refreshes"].get<int>() - before["refreshes"].get<int>() == 1);
  CHECK(after["grants"] == 1);
  CHECK(after["rejected_tokens"] == 0);
  MESSAGE("tokens served and used: " << t.token_ok);
}
