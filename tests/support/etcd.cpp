#include "support/etcd.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cluster/etcd_codec.hpp"
#include "core/random.hpp"
#include "support/certs.hpp"

namespace tokenbroker::test {

using json = nlohmann::json;

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("free_port: socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

etcd_fixture::etcd_fixture(etcd_fixture_options options) : options_(std::move(options)) {
  client_port_ = free_port();
  do {
    peer_port_ = free_port();
  } while (peer_port_ == client_port_);
  endpoint_ = (options_.tls ? "https://127.0.0.1:" : "http://127.0.0.1:") +
              std::to_string(client_port_);
  if (options_.tls) make_certificates();
  start();
  if (!options_.root_password.empty()) enable_auth();
}

etcd_fixture::~etcd_fixture() {
  if (proc_) proc_->terminate(std::chrono::seconds{5});
}

void etcd_fixture::make_certificates() {
  test_ca ca("etcd test CA");
  // clientAuth too: with --client-cert-auth, etcd 3.4's JSON gateway dials its own gRPC server
  // presenting this certificate, and that server checks it like any client's.
  auto server = ca.issue({"etcd", "serverAuth,clientAuth", "IP:127.0.0.1,DNS:localhost"});
  auto client = ca.issue({"tokenbroker", "clientAuth", ""});
  auto private_file = [&](const std::string& name, const std::string& pem) {
    auto path = dir_.write(name, pem);  // in a 0700 directory until it is 0600 too
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
    return path;
  };
  client_tls_.ca_file = dir_.write("ca.pem", ca.cert_pem());
  server_cert_file_ = dir_.write("server.pem", server.cert_pem);
  server_key_file_ = private_file("server-key.pem", server.key_pem);
  client_tls_.cert_file = dir_.write("client.pem", client.cert_pem);
  client_tls_.key_file = private_file("client-key.pem", client.key_pem);
}

void etcd_fixture::launch() {
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  process_options o;
  // The --initial-* flags only matter on the first run; later runs find the member in data/.
  o.argv = {"/usr/bin/etcd",
            "--name=test",
            "--data-dir=" + dir_.file("data"),
            "--listen-client-urls=" + endpoint_,
            "--advertise-client-urls=" + endpoint_,
            "--listen-peer-urls=" + peer,
            "--initial-advertise-peer-urls=" + peer,
            "--initial-cluster=test=" + peer,
            "--initial-cluster-state=new",
            "--auth-token=simple",
            "--auth-token-ttl=" + std::to_string(options_.auth_token_ttl),
            "--logger=zap",
            "--log-outputs=stderr",
            "--log-level=warn"};
  if (options_.tls)
    o.argv.insert(o.argv.end(), {"--cert-file=" + server_cert_file_,
                                 "--key-file=" + server_key_file_, "--client-cert-auth",
                                 "--trusted-ca-file=" + client_tls_.ca_file});
  o.stderr_path = dir_.file("etcd-" + std::to_string(++runs_) + ".log");
  proc_ = std::make_unique<process>(std::move(o));
}

void etcd_fixture::wait_ready() {
  auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  auto step = std::chrono::milliseconds{10};
  std::string last;
  for (;;) {
    if (!proc_->running())
      throw std::runtime_error("etcd exited during startup (" +
                               proc_->wait_exit(std::chrono::milliseconds{0})->describe() +
                               "); log:\n" + log());
    // /health answers true once the member has a leader and can serve reads.
    auto r = http_call_tls(endpoint_, client_tls_, "GET", "/health", {}, {},
                           std::chrono::seconds{2});
    if (r.status == 200 && r.body.find("\"true\"") != std::string::npos) return;
    last = r.error.empty() ? std::to_string(r.status) + " " + r.body : r.error;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("etcd did not become ready (last: " + last + "); log:\n" + log());
    std::this_thread::sleep_for(step);  // polling interval, bounded by the deadline above
    step = std::min(step * 2, std::chrono::milliseconds{100});
  }
}

void etcd_fixture::enable_auth() {
  auto must = [&](const std::string& path, const json& body) {
    auto r = call(path, body);
    if (r.status != 200)
      throw std::runtime_error("etcd " + path + ": " +
                               (r.error.empty() ? std::to_string(r.status) + " " + r.body : r.error));
  };
  must("/v3/auth/user/add", {{"name", "root"}, {"password", options_.root_password}});
  must("/v3/auth/user/grant", {{"user", "root"}, {"role", "root"}});
  must("/v3/auth/enable", json::object());
}

void etcd_fixture::start() {
  if (proc_ && proc_->running()) throw std::logic_error("etcd_fixture::start: already running");
  launch();
  wait_ready();
}

void etcd_fixture::stop() {
  if (proc_) proc_->terminate(std::chrono::seconds{10});
}

void etcd_fixture::kill() {
  if (!proc_) return;
  proc_->kill(SIGKILL);
  proc_->wait_exit(std::chrono::seconds{10});
}

bool etcd_fixture::running() { return proc_ && proc_->running(); }

std::string etcd_fixture::log() const {
  std::string out;
  for (int i = 1; i <= runs_; ++i) {
    std::ifstream in(dir_.file("etcd-" + std::to_string(i) + ".log"));
    std::stringstream ss;
    ss << in.rdbuf();
    out += "--- run " + std::to_string(i) + " ---\n" + ss.str();
  }
  return out;
}

http_result etcd_fixture::call(const std::string& path, const json& body,
                               const std::string& token) const {
  headers_list h{{"Content-Type", "application/json"}};
  if (!token.empty()) h.emplace_back("Authorization", token);
  return http_call_tls(endpoint_, client_tls_, "POST", path, h, body.dump());
}

std::string etcd_fixture::root_token() const {
  auto r = call("/v3/auth/authenticate", {{"name", "root"}, {"password", options_.root_password}});
  if (r.status != 200) throw std::runtime_error("etcd authenticate: " + r.body + r.error);
  return r.json().at("token").get<std::string>();
}

std::optional<std::string> etcd_fixture::get(const std::string& key) const {
  std::string token;
  if (!options_.root_password.empty()) token = root_token();
  auto r = call("/v3/kv/range", {{"key", base64_encode(key)}}, token);
  if (r.status != 200) throw std::runtime_error("etcd range " + key + ": " + r.body + r.error);
  auto doc = r.json();
  auto kvs = doc.find("kvs");
  if (kvs == doc.end() || kvs->empty()) return std::nullopt;
  // The value is omitted when empty.
  auto value = cluster::codec::decode_bytes(kvs->front().value("value", std::string{}));
  if (!value) throw std::runtime_error("etcd range " + key + ": bad base64");
  return value;
}

}  // namespace tokenbroker::test
