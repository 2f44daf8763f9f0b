#include "fakes.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <deque>

#include "core/spawn.hpp"

namespace tokenbroker::privicore::test {

http::response json_answer(int status, std::string body) {
  http::response r{static_cast<http::status>(status), 11};
  r.set(http::field::content_type, "application/json");
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

std::function<http::response(const http::request&)> in_order(std::vector<http::response> answers) {
  auto queue = std::make_shared<std::deque<http::response>>(answers.begin(), answers.end());
  return [queue](const http::request&) {
    if (queue->empty()) return json_answer(500, R"({"message":"no more canned answers"})");
    auto r = std::move(queue->front());
    queue->pop_front();
    return r;
  };
}

// --- HTTP -------------------------------------------------------------------------------------

fake_http_server::fake_http_server(net::io_context& ioc)
    : acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
  spawn_logged(ioc.get_executor(), "fake http server", run_accept());
}

http::url fake_http_server::url(std::string_view path) const {
  return http::url::parse("http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) +
                          std::string(path))
      .value();
}

void fake_http_server::close() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto* s : sockets_) s->close(ec);
}

awaitable<void> fake_http_server::run_accept() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    if (ec) co_return;
    spawn_logged(acceptor_.get_executor(), "fake http session", run_session(std::move(socket)));
  }
}

awaitable<void> fake_http_server::run_session(tcp::socket socket) {
  sockets_.push_back(&socket);
  struct forget {
    std::vector<tcp::socket*>& list;
    tcp::socket* s;
    ~forget() { std::erase(list, s); }
  } guard{sockets_, &socket};
  beast::flat_buffer buffer;
  for (;;) {
    http::request req;
    auto [ec, n] = co_await http::bhttp::async_read(socket, buffer, req, use_tuple);
    if (ec) co_return;
    requests.push_back(req);
    if (silent) continue;  // the next read waits for a request that never comes
    auto res = respond ? respond(req) : json_answer(500, "{}");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    auto [wec, wn] = co_await http::bhttp::async_write(socket, res, use_tuple);
    if (wec || !req.keep_alive()) co_return;
  }
}

// --- WebSocket --------------------------------------------------------------------------------

template <class Stream>
awaitable<std::string> basic_ws_peer<Stream>::read() {
  beast::flat_buffer buffer;
  auto [ec, n] = co_await ws.async_read(buffer, use_tuple);
  if (ec) co_return std::string{};
  co_return beast::buffers_to_string(buffer.data());
}

template <class Stream>
awaitable<void> basic_ws_peer<Stream>::send(std::string text) {
  ws.text(true);
  auto [ec, n] = co_await ws.async_write(net::buffer(text), use_tuple);
  REQUIRE_FALSE(ec);
}

template <class Stream>
awaitable<nlohmann::json> basic_ws_peer<Stream>::accept_join(std::string channel_id) {
  auto text = co_await read();
  auto join = nlohmann::json::parse(text, nullptr, false);
  REQUIRE_FALSE(join.is_discarded());
  nlohmann::json ack{{"correlationId", join.value("correlationId", "")},
                     {"status", 200},
                     {"data",
                      {{"channelId", channel_id},
                       {"message", "Successfully joined profile channel."}}}};
  co_await send(ack.dump());
  co_return join;
}

template <class Stream>
awaitable<void> basic_ws_peer<Stream>::send_ack(std::string id, int command_status,
                                                std::string body) {
  nlohmann::json ack{{"data",
                      {{"type", "X-DPT-CAB-ID"},
                       {"id", id},
                       {"command_status", command_status},
                       {"body", body.empty() ? nlohmann::json() : nlohmann::json(body)}}}};
  co_await send(ack.dump());
}

template <class Stream>
void basic_ws_peer<Stream>::drop() {
  boost::system::error_code ec;
  beast::get_lowest_layer(ws).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws).close();
}

template class basic_ws_peer<beast::tcp_stream>;
template class basic_ws_peer<http::ssl::stream<beast::tcp_stream>>;

loopback_certificate::loopback_certificate() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  REQUIRE(key != nullptr);
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
    REQUIRE(ext != nullptr);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(x, key, EVP_sha256()) > 0);
  auto to_pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  };
  cert_pem = to_pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
  key_pem = to_pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(x);
  EVP_PKEY_free(key);

  server_context.use_certificate(net::buffer(cert_pem), http::ssl::context::pem);
  server_context.use_private_key(net::buffer(key_pem), http::ssl::context::pem);
  char path[] = "/tmp/tb-privicore-ca-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, cert_pem.data(), cert_pem.size()) == static_cast<ssize_t>(cert_pem.size()));
  ::close(fd);
  ca_file = path;
}

loopback_certificate::~loopback_certificate() { std::remove(ca_file.c_str()); }

fake_ws_server::fake_ws_server(net::io_context& ioc)
    : acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {}

http::url fake_ws_server::url(bool tls) const {
  return http::url::parse(std::string(tls ? "wss" : "ws") + "://127.0.0.1:" +
                          std::to_string(acceptor_.local_endpoint().port()) + "/ws")
      .value();
}

awaitable<std::unique_ptr<ws_peer>> fake_ws_server::accept() {
  auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
  REQUIRE_FALSE(ec);
  auto peer = std::make_unique<ws_peer>(std::move(socket));
  auto [aec] = co_await peer->ws.async_accept(use_tuple);
  REQUIRE_FALSE(aec);
  co_return peer;
}

awaitable<std::unique_ptr<wss_peer>> fake_ws_server::accept_tls(http::ssl::context& ctx) {
  auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
  if (ec) co_return nullptr;
  auto peer = std::make_unique<wss_peer>(beast::tcp_stream(std::move(socket)), ctx);
  auto [hec] = co_await peer->ws.next_layer().async_handshake(http::ssl::stream_base::server,
                                                               use_tuple);
  if (hec) co_return nullptr;
  auto [aec] = co_await peer->ws.async_accept(use_tuple);
  if (aec) co_return nullptr;
  co_return peer;
}

void fake_ws_server::close() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

// --- fixture ----------------------------------------------------------------------------------

ack_channel_options fast_channel() {
  ack_channel_options o;
  o.connect_timeout = 1s;
  o.join_timeout = 1s;
  o.idle_timeout = 10s;
  o.reconnect_base = 5ms;
  o.reconnect_cap = 20ms;
  return o;
}

net::io_context& shared_io() {
  static net::io_context ioc;
  return ioc;
}

http::client& shared_http() {
  static http::client client{shared_io().get_executor(), {}};
  return client;
}

fixture::fixture() { ioc.restart(); }  // a previous test may have left it stopped

fixture::~fixture() {
  if (channel) channel->stop();
  http_server.close();
  ws_server.close();
  ioc.restart();
  ioc.run_for(2s);  // returns as soon as the stopped tasks have unwound
}

client fixture::make_client(std::chrono::milliseconds timeout, status_method method) {
  return client{http, http_server.url(), timeout, method};
}

ack_channel& fixture::start_channel(secret token, ack_channel_options options, http::client* via,
                                   bool tls) {
  channel.emplace(via ? *via : http, ws_server.url(tls), std::move(token), options);
  spawn_logged(ioc.get_executor(), "ack channel", channel->run());
  return *channel;
}

void fixture::run(std::function<awaitable<void>()> body, std::chrono::milliseconds limit) {
  bool done = false;
  std::exception_ptr failure;
  net::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    done = true;
    failure = e;
  });
  auto until = steady_clock::now() + limit;
  while (!done && steady_clock::now() < until)
    if (ioc.run_one_until(until) == 0 && ioc.stopped()) break;
  REQUIRE_MESSAGE(done, "the test body did not finish in time");
  if (failure) std::rethrow_exception(failure);
}

awaitable<void> yield_once() {
  co_await net::post(co_await net::this_coro::executor, net::use_awaitable);
}

}  // namespace tokenbroker::privicore::test
