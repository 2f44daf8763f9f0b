// The proxy (/v1/proxy/{name}/...) against the simulator's data plane: the token injected once,
// bodies streamed both ways in bounded memory, upstream failures answered clearly, the 401 retry,
// Prefer: wait, and every path that tries to leave api_url refused.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <signal.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "broker_fixture.hpp"
#include "support/eventually.hpp"

using namespace tokenbroker::test;
using json = nlohmann::json;
using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using local = net::local::stream_protocol;

namespace {

constexpr const char* proxy_base = "/v1/proxy/privicore";

// How much the streaming tests move each way (TB_PROXY_STREAM_MIB, default 1 GiB).
std::uint64_t stream_bytes() {
  const char* env = std::getenv("TB_PROXY_STREAM_MIB");
  std::uint64_t mib = env ? std::strtoull(env, nullptr, 10) : 1024;
  return mib * 1024 * 1024;
}

// kB figure of a /proc/PID/status line ("VmRSS:", "VmHWM:").
std::uint64_t proc_status_kb(int pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::strtoull(line.c_str() + key.size(), nullptr, 10);
  throw std::runtime_error("no " + key + " for pid " + std::to_string(pid));
}

// Resets the peak RSS (VmHWM) to the current RSS, so the peak of what follows can be read.
void reset_peak_rss(int pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  REQUIRE(out.good());
}

// The simulator's download pattern (byte i = i % 251): a buffer whose size is a multiple of 251
// repeats it exactly.
std::vector<char> pattern_block() {
  std::vector<char> b(251 * 4096);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<char>(i % 251);
  return b;
}

std::string hex(const unsigned char* p, unsigned n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

local::socket connect_unix(net::io_context& io, const std::string& path) {
  local::socket s(io);
  s.connect(local::endpoint(path));
  timeval tv{300, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return s;
}

struct upload_result {
  int status = 0;
  std::string body;
  std::string sha256;  // of what was sent
  int then_status = 0;  // of a GET sent next on the same connection, when it was kept alive
};

// POSTs `bytes` of the pattern through the broker, streamed, chunked or with a length.
upload_result stream_upload(const std::string& socket_path, const std::string& target,
                            std::uint64_t bytes, bool chunked) {
  net::io_context io;
  auto s = connect_unix(io, socket_path);
  bhttp::request<bhttp::buffer_body> req{bhttp::verb::post, target, 11};
  req.set(bhttp::field::host, "localhost");
  if (chunked) req.chunked(true);
  else req.content_length(bytes);
  bhttp::request_serializer<bhttp::buffer_body> sr{req};
  req.body().data = nullptr;
  req.body().more = true;
  bhttp::write_header(s, sr);
  auto block = pattern_block();
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  for (std::uint64_t sent = 0; sent < bytes;) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), bytes - sent));
    EVP_DigestUpdate(md, block.data(), n);
    req.body().data = block.data();
    req.body().size = n;
    req.body().more = true;
    beast::error_code ec;
    bhttp::write(s, sr, ec);
    // The broker may answer (and close) before taking the whole body, as a 401 does: read it.
    if (ec && ec != bhttp::error::need_buffer) break;
    sent += n;
  }
  req.body().data = nullptr;
  req.body().size = 0;
  req.body().more = false;
  beast::error_code ignored;
  bhttp::write(s, sr, ignored);
  unsigned char digest[32];
  unsigned len = 0;
  EVP_DigestFinal_ex(md, digest, &len);
  EVP_MD_CTX_free(md);

  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buffer, res);
  upload_result out{static_cast<int>(res.result_int()), res.body(), hex(digest, len)};
  if (res.keep_alive()) {  // the connection goes on where the body ended
    bhttp::request<bhttp::empty_body> next{bhttp::verb::get,
                                           std::string(proxy_base) + "/data-token/echo", 11};
    next.set(bhttp::field::host, "localhost");
    bhttp::write(s, next);
    bhttp::response<bhttp::string_body> again;
    bhttp::read(s, buffer, again);
    out.then_status = static_cast<int>(again.result_int());
  }
  return out;
}

struct download_result {
  int status = 0;
  std::uint64_t bytes = 0;
  bool pattern_ok = true;
  bool cut = false;  // the connection ended before the body did
};

// The simulator's download of `bytes`, chunked or framed by a Content-Length.
std::string download_target(std::uint64_t bytes, bool with_length) {
  return std::string(proxy_base) + "/data-token/download?bytes=" + std::to_string(bytes) +
         (with_length ? "&framing=length" : "");
}

// A download through the broker, read as it arrives: the request sent, the answer's header read.
struct download_reader {
  download_reader(const std::string& socket_path, std::uint64_t bytes, bool with_length)
      : s(connect_unix(io, socket_path)) {
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, download_target(bytes, with_length),
                                          11};
    req.set(bhttp::field::host, "localhost");
    bhttp::write(s, req);
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    bhttp::read_header(s, buffer, p);
  }
  int status() const { return static_cast<int>(p.get().result_int()); }
  /// Reads body bytes into `chunk` until it is full or the body ends: how many; `ec` is set
  /// when the connection failed or ended before the body did.
  std::size_t read(beast::error_code& ec) {
    p.get().body().data = chunk.data();
    p.get().body().size = chunk.size();
    bhttp::read(s, buffer, p, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    return chunk.size() - p.get().body().size;
  }

  net::io_context io;
  local::socket s;
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> p;
  std::vector<char> chunk = std::vector<char>(1 << 20);
};

// GETs the simulator's download through the broker and checks every byte as it streams by.
// With a length, a long answer is relayed by splice(2); a chunked one is copied.
download_result stream_download(const std::string& socket_path, std::uint64_t bytes,
                                bool with_length = false) {
  download_reader d(socket_path, bytes, with_length);
  download_result out;
  out.status = d.status();
  while (!d.p.is_done()) {
    beast::error_code ec;
    auto n = d.read(ec);
    if (ec) {
      out.cut = true;
      out.bytes += n;
      break;
    }
    for (std::size_t i = 0; i < n && out.pattern_ok; ++i)
      out.pattern_ok = static_cast<unsigned char>(d.chunk[i]) == (out.bytes + i) % 251;
    out.bytes += n;
  }
  return out;
}

// One raw request line and headers over the unix socket; the status code of the answer.
int raw_status(const std::string& socket_path, const std::string& request_head) {
  net::io_context io;
  auto s = connect_unix(io, socket_path);
  net::write(s, net::buffer(request_head));
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  beast::error_code ec;
  bhttp::read(s, buffer, res, ec);
  return ec ? 0 : static_cast<int>(res.result_int());
}

std::uint64_t sim_requests(const sim_fixture& sim) {
  std::uint64_t n = 0;
  auto stats = sim.stats();  // named: a range-for over a temporary's member would dangle
  for (auto& [path, count] : stats["requests"].items())
    if (path.rfind("/data-token", 0) == 0) n += count.get<std::uint64_t>();
  return n;
}

}  // namespace

TEST_CASE("the_proxy_injects_the_token_once_and_keeps_method_query_and_body") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto token = b.token();
  auto r = b.call("PATCH", std::string(proxy_base) + "/data-token/echo?a=1&b=x%20y&a=2",
                  {{"Authorization", "Bearer not-mine"},
                   {"X-DPT-AUTHORIZATION", "forged-token"},
                   {"x-dpt-authorization", "second-forged-token"},
                   {"X-Custom", "kept"},
                   {"Connection", "keep-alive, X-Hop"},
                   {"X-Hop", "dropped"},
                   {"Content-Type", "text/plain"}},
                  "hello body");
  REQUIRE_MESSAGE(r.status == 200, r.body, r.error);
  auto echo = r.json();
  CHECK(echo["method"] == "PATCH");
  CHECK(echo["path"] == "/data-token/echo");
  CHECK(echo["query"] == "a=1&b=x%20y&a=2");
  CHECK(echo["body_bytes"] == 10);
  auto headers = echo["headers"];
  // Exactly our token, once: repeated fields would arrive joined with ", ".
  CHECK(headers["x-dpt-authorization"] == token);
  CHECK_FALSE(headers.contains("authorization"));
  CHECK(headers["x-custom"] == "kept");
  CHECK(headers["content-type"] == "text/plain");
  CHECK_FALSE(headers.contains("x-hop"));
  CHECK_FALSE(headers.contains("x-token-broker"));
  CHECK(headers["host"] == "127.0.0.1:" + std::to_string(sim.port()));
  CHECK(echo["profile"] == test_username);

  // Every method, and a bodyless GET on the same keep-alive path.
  for (std::string m : {"GET", "DELETE", "PUT", "POST"}) {
    auto e = b.call(m, std::string(proxy_base) + "/data-token/echo");
    REQUIRE_MESSAGE(e.status == 200, m, e.body);
    CHECK(e.json()["method"] == m);
  }

  // Counted once the answer's last byte is written, which the client may see first.
  std::string metrics;
  CHECK(eventually([&] {
    metrics = b.call("GET", "/metrics").body;
    return metrics.find("tokenbroker_proxy_requests_total{code=\"200\",credential=\"privicore\"} 5") !=
           std::string::npos;
  }));
  CHECK(metrics.find("tokenbroker_proxy_duration_seconds_count{credential=\"privicore\"} 5") !=
        std::string::npos);
  CHECK(metrics.find(token) == std::string::npos);
  auto log = b.proc().stderr_text();
  CHECK(log.find("proxy privicore PATCH /data-token/echo -> 200") != std::string::npos);
  CHECK(log.find(token) == std::string::npos);
  CHECK(log.find("hello body") == std::string::npos);
}

TEST_CASE("gigabytes_stream_through_the_proxy_in_bounded_memory") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  b.token();
  // Warm up: the first proxied call sets up the upstream pool.
  REQUIRE(b.call("GET", std::string(proxy_base) + "/data-token/echo").status == 200);
  const int pid = b.proc().pid();
  const auto bytes = stream_bytes();
  const auto idle_kb = proc_status_kb(pid, "VmRSS:");
  const std::uint64_t allowance_kb = 32 * 1024;

  // Each subcase starts a fresh daemon; the chunked and length-framed uploads differ in framing.
  for (bool chunked : {true, false}) {
    SUBCASE(chunked ? "upload, chunked" : "upload, with a length") {
      reset_peak_rss(pid);
      auto up = stream_upload(b.socket_path(), std::string(proxy_base) + "/data-token/upload",
                              bytes, chunked);
      REQUIRE_MESSAGE(up.status == 200, up.body);
      auto answer = json::parse(up.body);
      CHECK(answer["bytes"] == bytes);
      CHECK(answer["sha256"] == up.sha256);
      CHECK(up.then_status == 200);  // kept alive, and read exactly to the body's end
      auto peak = proc_status_kb(pid, "VmHWM:");
      CHECK_MESSAGE(peak <= idle_kb + allowance_kb, "idle ", idle_kb, " kB, peak ", peak, " kB");
    }
  }
  for (bool with_length : {false, true}) {
    SUBCASE(with_length ? "download, with a length (spliced)" : "download, chunked") {
      reset_peak_rss(pid);
      auto down = stream_download(b.socket_path(), bytes, with_length);
      CHECK(down.status == 200);
      CHECK_FALSE(down.cut);
      CHECK(down.bytes == bytes);
      CHECK(down.pattern_ok);
      auto peak = proc_status_kb(pid, "VmHWM:");
      CHECK_MESSAGE(peak <= idle_kb + allowance_kb, "idle ", idle_kb, " kB, peak ", peak, " kB");
      // The upstream connection ended exactly at the body's end: the next call reuses it (the
      // simulator counts one connection more, the admin call's own).
      auto opened = sim.stats()["connections"].get<int>();
      auto echo = b.call("GET", std::string(proxy_base) + "/data-token/echo");
      CHECK(echo.status == 200);
      CHECK(echo.json()["method"] == "GET");
      CHECK(sim.stats()["connections"].get<int>() == opened + 1);
    }
  }
}

TEST_CASE("a_client_that_leaves_mid_stream_costs_the_broker_nothing") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  b.token();
  for (bool with_length : {false, true}) {
    CAPTURE(with_length);
    {
      net::io_context io;
      auto s = connect_unix(io, b.socket_path());
      bhttp::request<bhttp::empty_body> req{bhttp::verb::get,
                                            download_target(256ull << 20, with_length), 11};
      req.set(bhttp::field::host, "localhost");
      bhttp::write(s, req);
      std::vector<char> some(1 << 20);
      net::read(s, net::buffer(some));  // the header and the first MiB, then the client leaves
    }
    {
      // An upload that stops after its first MiB of a declared 256 MiB.
      net::io_context io;
      auto s = connect_unix(io, b.socket_path());
      std::string head = "POST " + std::string(proxy_base) +
                         "/data-token/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                         std::to_string(256ull << 20) + "\r\n\r\n";
      net::write(s, net::buffer(head));
      std::vector<char> some(1 << 20, 'x');
      net::write(s, net::buffer(some));
    }
    // The broker's writes now fail (EPIPE or a reset); it goes on serving.
    auto r = b.call("GET", std::string(proxy_base) + "/data-token/echo");
    CHECK(r.status == 200);
    CHECK(b.call("GET", "/v1/token/privicore").status == 200);
    auto down = stream_download(b.socket_path(), 4 << 20, with_length);
    CHECK(down.status == 200);
    CHECK(down.bytes == 4u << 20);
    CHECK(down.pattern_ok);
    auto up = stream_upload(b.socket_path(), std::string(proxy_base) + "/data-token/upload",
                            4 << 20, !with_length);
    CHECK(up.status == 200);
    CHECK(json::parse(up.body)["sha256"] == up.sha256);
  }
  CHECK(b.proc().running());
}

TEST_CASE("upstream_failures_get_clear_json_answers") {
  sim_fixture sim(sim_flags_for_broker());
  broker_options o;
  o.extra_credential = "timeout = \"2s\"\n";
  broker_fixture b(sim, o);
  b.token();
  const std::string echo = std::string(proxy_base) + "/data-token/echo";

  SUBCASE("slow: no answer within the timeout is a 504") {
    sim.fault({{"path", "/data-token/echo"}, {"kind", "hang"}});
    auto t0 = std::chrono::steady_clock::now();
    auto r = b.call("GET", echo);
    CHECK(r.status == 504);
    CHECK(r.json()["error"] == "upstream_timeout");
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  }
  SUBCASE("resetting: a connection reset is a 502") {
    sim.fault({{"path", "/data-token/echo"}, {"kind", "reset"}});
    auto r = b.call("POST", echo, {}, "x");
    CHECK(r.status == 502);
    CHECK(r.json()["error"] == "upstream_unreachable");
  }
  SUBCASE("malformed: a broken answer is a 502") {
    auto r0 = b.call("GET", echo);
    REQUIRE(r0.status == 200);
    sim.fault({{"path", "/data-token/echo"}, {"kind", "slow_body"}, {"interval_ms", 5000}});
    // Headers arrive, then the body stalls past the idle timeout. A small answer is read whole
    // before anything is relayed, so the caller gets a clear 504, never a short or faked body.
    auto r = b.call("GET", echo, {}, {}, 20s);
    CHECK(r.status == 504);
    CHECK(r.json()["error"] == "upstream_timeout");
  }
  for (bool with_length : {false, true}) {
    SUBCASE(with_length ? "stalled mid-stream, with a length (spliced): the answer is cut"
                        : "stalled mid-stream, chunked: the answer is cut") {
      // A large answer under way is cut, never passed off as whole.
      const std::uint64_t bytes = 1 << 20;
      sim.fault({{"path", "/data-token/download"}, {"kind", "slow_body"}, {"interval_ms", 5000}});
      auto t0 = std::chrono::steady_clock::now();
      auto down = stream_download(b.socket_path(), bytes, with_length);
      CHECK(down.status == 200);  // the header was relayed before the stall
      CHECK(down.cut);
      CHECK(down.bytes >= 64 * 1024);  // what arrived before the stall was passed on
      CHECK(down.bytes < bytes);
      CHECK(down.pattern_ok);
      CHECK(std::chrono::steady_clock::now() - t0 < 10s);
      CHECK(b.call("GET", "/metrics").body.find(
                "tokenbroker_upstream_errors_total{credential=\"privicore\",kind=\"timeout\"}") !=
            std::string::npos);
    }
    SUBCASE(with_length ? "gone mid-stream, with a length (spliced): the answer is cut"
                        : "gone mid-stream, chunked: the answer is cut") {
      sim.fault({{"path", "/data-token/download"}, {"kind", "slow_body"}, {"interval_ms", 1000}});
      // The first piece comes before the stall (64 KiB); it is read, then the upstream dies.
      download_reader d(b.socket_path(), 1 << 20, with_length);
      CHECK(d.status() == 200);
      d.chunk.resize(64 * 1024);
      beast::error_code ec;
      REQUIRE(d.read(ec) == 64 * 1024);
      REQUIRE_FALSE(ec);
      sim.proc().kill(SIGKILL);  // the upstream goes away in the middle of the body
      sim.proc().wait_exit(5s);
      auto t0 = std::chrono::steady_clock::now();
      d.chunk.resize(1 << 20);
      while (!ec && !d.p.is_done()) d.read(ec);
      CHECK(ec);  // cut: the connection ended before the body did
      CHECK_FALSE(d.p.is_done());
      CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // at once, not after the timeout
      CHECK(b.call("GET", "/metrics").body.find(
                "tokenbroker_upstream_errors_total{credential=\"privicore\",kind=\"reset\"}") !=
            std::string::npos);
    }
  }
  SUBCASE("down: nothing listening is a 502") {
    sim.proc().kill(SIGKILL);
    sim.proc().wait_exit(5s);
    auto r = b.call("GET", echo);
    CHECK(r.status == 502);
    CHECK(r.json()["error"] == "upstream_unreachable");
    CHECK(r.header("cache-control") == "no-store");
  }
  auto metrics = b.call("GET", "/metrics").body;
  CHECK(metrics.find("tokenbroker_upstream_errors_total{credential=\"privicore\"") !=
        std::string::npos);
}

TEST_CASE("a_pooled_connection_the_upstream_closed_costs_the_caller_nothing") {
  // The simulator closes a keep-alive connection idle for 200 ms, as servers do after their
  // keep-alive timeout. The broker's pooled connection to it is then dead: a GET goes out on it,
  // finds it closed and is sent again on a fresh one; a POST is never sent on it (the pool asks
  // the socket first: a POST is not sent twice). Either way the caller sees only its answer.
  sim_fixture sim(sim_flags_for_broker({"--idle-timeout", "200ms"}));
  broker_options o;
  o.websocket = false;  // no long-lived connection: every one the broker holds goes idle
  broker_fixture b(sim, o);
  b.token();
  const std::string echo = std::string(proxy_base) + "/data-token/echo";
  // Only the admin call asking is open: the simulator closed every connection of the broker's.
  auto all_closed = [&] { return sim.stats()["open_connections"].get<int>() <= 1; };
  REQUIRE(b.call("GET", echo).status == 200);  // a connection for the proxy's pool
  REQUIRE(eventually(all_closed));
  for (std::string method : {"GET", "POST", "GET", "DELETE", "PUT", "POST"}) {
    CAPTURE(method);
    // Each admin call is a connection of its own, counted before it answers.
    auto opened = sim.stats()["connections"].get<int>();
    bool with_body = method == "POST" || method == "PUT";
    auto r = b.call(method, echo, {}, with_body ? "payload" : "");
    CHECK(r.status == 200);
    CHECK(r.json()["method"] == method);
    CHECK(r.json()["body_bytes"] == (with_body ? 7 : 0));
    CHECK(sim.stats()["connections"].get<int>() >= opened + 2);  // the broker's was new
    REQUIRE(eventually(all_closed));
  }
}

TEST_CASE("an_upstream_401_refreshes_once_and_retries_small_bodies_only") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  auto first = b.token();
  const std::string echo = std::string(proxy_base) + "/data-token/echo";

  // The upstream stops accepting the token the broker still thinks valid.
  sim.expire(first);
  auto refreshes = sim.stats()["refreshes"].get<int>();
  auto r = b.call("POST", echo, {{"Content-Type", "application/json"}}, R"({"small":true})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto used = r.json()["headers"]["x-dpt-authorization"].get<std::string>();
  CHECK(used != first);
  CHECK(sim.check(used)["valid"] == true);
  CHECK(r.json()["body_bytes"] == 14);
  CHECK(sim.stats()["refreshes"].get<int>() == refreshes + 1);

  // A body too large to keep (1 MiB) is not retried: the 401 passes through, once.
  auto second = b.token();
  sim.expire(second);
  auto rejected_before = sim.stats()["rejected_tokens"].get<int>();
  auto big = stream_upload(b.socket_path(), std::string(proxy_base) + "/data-token/upload",
                           1024 * 1024, false);
  CHECK(big.status == 401);
  CHECK(sim.stats()["rejected_tokens"].get<int>() == rejected_before + 1);
  // The refused token is dropped all the same: the next call carries a fresh one.
  auto after = b.call("GET", echo);
  REQUIRE(after.status == 200);
  CHECK(after.json()["headers"]["x-dpt-authorization"] != second);

  // Never a loop: when the refreshed token is refused too, the client gets that 401.
  sim.fault({{"path", "/data-token/echo"}, {"kind", "status"}, {"status", 401}});
  auto before = sim.stats()["requests"]["/data-token/echo"].get<int>();
  auto twice = b.call("GET", echo);
  CHECK(twice.status == 401);
  CHECK(sim.stats()["requests"]["/data-token/echo"].get<int>() == before + 2);
}

TEST_CASE("prefer_wait_turns_a_command_into_one_call") {
  for (bool websocket : {true, false}) {
    CAPTURE(websocket);
    sim_fixture sim(sim_flags_for_broker());
    broker_options o;
    o.websocket = websocket;
    broker_fixture b(sim, o);
    b.token();
    const std::string command = std::string(proxy_base) + "/data-token/command";

    auto ok = b.call("POST", command + "?outcome=succeeded", {{"Prefer", "wait=10"}}, "{}");
    REQUIRE_MESSAGE(ok.status == 200, ok.body);
    CHECK(ok.json()["status"] == "succeeded");
    CHECK(ok.json()["commandId"].is_string());
    CHECK(ok.header("preference-applied") == "wait=10");

    auto no = b.call("POST", command + "?outcome=rejected", {{"Prefer", "respond-async, wait=10"}},
                     "{}");
    REQUIRE_MESSAGE(no.status == 200, no.body);
    CHECK(no.json()["status"] == "rejected");

    auto t0 = std::chrono::steady_clock::now();
    auto never = b.call("POST", command + "?outcome=never", {{"Prefer", "wait=2"}}, "{}");
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(never.status == 504);
    CHECK(never.json()["error"] == "upstream_timeout");
    CHECK(never.json()["commandId"].is_string());
    CHECK(took >= 1900ms);
    CHECK(took < 10s);

    // Without the preference the 202 passes through untouched.
    auto plain = b.call("POST", command + "?outcome=succeeded", {}, "{}");
    CHECK(plain.status == 202);
  }
}

TEST_CASE("every_path_escape_is_refused_with_400_before_reaching_the_upstream") {
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  b.token();
  auto before = sim_requests(sim);
  for (std::string path :
       {"/../v1/token/privicore", "/data-token/../../_sim/stats", "/%2e%2e/_sim/stats",
        "/.%2E/_sim/stats", "/%2E./x", "/data-token/%2F/echo", "/data-token%2f..%2f_sim",
        "/a%5c..%5cb", "/a\\..\\b", "//etc/passwd", "/data-token//echo", "/..;/_sim/stats",
        "/%252e%252e/_sim/stats", "/a/./b", "/./data-token/echo", "/a/%00", "/a%zz",
        "/data-token/echo?x=%zz", "/data-token/echo?x=\"y\"", "/data-token/%0d%0aX: y"}) {
    CAPTURE(path);
    auto r = raw_status(b.socket_path(), "GET " + std::string(proxy_base) + path +
                                             " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(r == 400);
  }
  // Not origin-form, or a tunnel: refused too.
  CHECK(raw_status(b.socket_path(), "GET http://evil.example/v1/proxy/privicore/x HTTP/1.1\r\n"
                                    "Host: evil.example\r\n\r\n") == 400);
  CHECK(raw_status(b.socket_path(), "CONNECT evil.example:443 HTTP/1.1\r\nHost: x\r\n\r\n") ==
        400);
  // A name that is not a credential, and no name at all.
  CHECK(b.call("GET", "/v1/proxy/nope/data-token/echo").status == 404);
  CHECK(b.call("GET", "/v1/proxy//data-token/echo").status == 400);
  CHECK(sim_requests(sim) == before);
  // Legitimate neighbours still pass.
  CHECK(b.call("GET", std::string(proxy_base) + "/data-token/echo?x=a..b").status == 200);
  CHECK(b.call("GET", std::string(proxy_base) + "/data-token/echo/").status != 400);
}
