#include "broker_fixture.hpp"

#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

namespace tokenbroker::test {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

void write_private(const std::string& path, const std::string& content) {
  std::ofstream(path) << content << "\n";
  ::chmod(path.c_str(), 0600);
}

}  // namespace

std::vector<std::string> sim_flags_for_broker(std::vector<std::string> extra) {
  std::vector<std::string> flags = {
      "--profile", std::string(test_username) + ":" + test_password,
      "--app", std::string(test_username) + ":" + test_client_id + ":" + test_client_secret};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

http_result unix_call(const std::string& socket_path, const std::string& method,
                      const std::string& target, const headers_list& headers,
                      const std::string& body, std::chrono::milliseconds timeout,
                      std::atomic<int>* connected) {
  http_result out;
  net::io_context io;
  net::local::stream_protocol::socket s(io);
  boost::system::error_code ec;
  s.connect(net::local::stream_protocol::endpoint(socket_path), ec);
  if (ec) {
    out.error = "connect: " + ec.message();
    return out;
  }
  if (connected) ++*connected;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "localhost");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(s, req, ec);
  boost::beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  if (!ec) bhttp::read(s, buf, parser, ec);
  if (ec) {
    out.error = "read: " + ec.message();
    return out;
  }
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(f.value());
  }
  out.body = res.body();
  return out;
}

broker_fixture::broker_fixture(const sim_fixture& sim, broker_options o) {
  socket_ = dir_.file("tb.sock");
  config_ = dir_.file("tokenbroker.toml");
  write_private(dir_.file("client-secret"), test_client_secret);
  write_private(dir_.file("password"), test_password);
  std::string cfg = "[server]\nsocket = \"" + socket_ + "\"\nsocket_mode = \"0600\"\n" +
                    "state_dir = \"" + dir_.file("state") + "\"\n" + o.extra_server + "\n" +
                    "[credential.privicore]\nprovider = \"privicore\"\n" + "api_url = \"" +
                    sim.url() + "\"\n" + "client_id = \"" + test_client_id + "\"\n" +
                    "client_secret_file = \"" + dir_.file("client-secret") + "\"\n" +
                    "refresh_margin = \"1s\"\n";
  if (o.websocket) cfg += "ws_url = \"" + sim.ws_url() + "\"\n";
  if (o.profile_login)
    cfg += std::string("username = \"") + test_username + "\"\npassword_file = \"" +
           dir_.file("password") + "\"\n";
  cfg += o.extra_credential + "\n";
  if (o.persist) {
    write_private(dir_.file("state.key"), std::string(64, 'a'));
    cfg.replace(cfg.find("state_dir = "), 0, "state_key_file = \"" + dir_.file("state.key") + "\"\n");
  }
  cfg += o.extra_toml;
  write_private(config_, cfg);
  log_level_ = o.log_level;
  log_format_ = o.log_format;
  start();
}

void broker_fixture::restart(int sig) {
  proc_->kill(sig);
  proc_->wait_exit(std::chrono::seconds{15});
  start();
}

void broker_fixture::start() {
  proc_ = std::make_unique<process>(process_options{
      {bin_path("tokenbrokerd"), "--config", config_, "--log-level", log_level_, "--log-format",
       log_format_},
      {},
      {},
      dir_.file("broker" + std::to_string(starts_++) + ".log")});
  // Ready when the socket answers; the daemon creates it only once it is listening.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = unix_call(socket_, "GET", "/healthz", {}, {}, std::chrono::seconds{1});
    if (r.status == 200) return;
    if (!proc_->running())
      throw std::runtime_error("tokenbrokerd exited at start:\n" + proc_->stderr_text());
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  throw std::runtime_error("tokenbrokerd did not start:\n" + proc_->stderr_text());
}

broker_fixture::~broker_fixture() {
  if (proc_) proc_->terminate();
}

http_result broker_fixture::call(const std::string& method, const std::string& target,
                                 const headers_list& headers, const std::string& body,
                                 std::chrono::milliseconds timeout) const {
  return unix_call(socket_, method, target, headers, body, timeout);
}

std::string broker_fixture::token(const std::string& query) const {
  auto r = call("GET", "/v1/token/privicore" + query);
  if (r.status != 200)
    throw std::runtime_error("token request failed: " + std::to_string(r.status) + " " + r.body +
                             r.error);
  return r.json()["access_token"].get<std::string>();
}

std::string broker_fixture::state(const std::string& name) const {
  auto r = call("GET", "/v1/credentials");
  if (r.status != 200) return "unreachable";
  auto body = r.json();  // named: a range-for over a temporary's member would dangle
  for (const auto& c : body["credentials"])
    if (c["name"] == name) return c["state"].get<std::string>();
  return "missing";
}

bool broker_fixture::wait_for_state(const std::string& want, std::chrono::milliseconds timeout,
                                    const std::string& name) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (state(name) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return false;
}

}  // namespace tokenbroker::test
