#include "support/ws_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <stdexcept>

#include "http/beast.hpp"
#include "http/url.hpp"

namespace tokenbroker::test {

namespace websocket = boost::beast::websocket;
using http::beast::flat_buffer;
using steady = std::chrono::steady_clock;

// The io_context runs only inside calls; a background read keeps filling `inbox`.
struct ws_client::impl {
  virtual ~impl() = default;
  virtual void start_read() = 0;
  virtual void async_send(const std::string& text, std::function<void(bool)> done) = 0;

  // Runs the io_context until `done()` or the deadline.
  bool run_until(const std::function<bool()>& done, steady::time_point deadline) {
    while (!done()) {
      auto now = steady::now();
      if (now >= deadline) return false;
      ioc.restart();
      ioc.run_for(deadline - now);
    }
    return true;
  }

  net::io_context ioc;
  std::deque<std::string> inbox;
  bool closed = false;
};

template <class Stream>
struct ws_client::impl_for : ws_client::impl {
  impl_for() : ws(ioc) {}
  explicit impl_for(http::ssl::context& tls) : ws(ioc, tls) {}

  void start_read() override {
    ws.async_read(buf, [this](boost::system::error_code ec, std::size_t) {
      if (ec) {
        closed = true;
      } else {
        inbox.push_back(http::beast::buffers_to_string(buf.data()));
        buf.consume(buf.size());
        start_read();
      }
      ioc.stop();  // let the waiting call look at the inbox
    });
  }

  void async_send(const std::string& text, std::function<void(bool)> done) override {
    outgoing = text;
    ws.text(true);
    ws.async_write(net::buffer(outgoing),
                   [this, done = std::move(done)](boost::system::error_code ec, std::size_t) {
                     done(!ec);
                     ioc.stop();
                   });
  }

  websocket::stream<Stream> ws;
  flat_buffer buf;
  std::string outgoing;
};

namespace {

// Connect, TLS (SNI + peer and host-name verification) and the upgrade, synchronously: the
// simulator answers at once, and a test that hangs here is stopped by ctest's timeout.
template <class Impl>
void open(Impl& p, const http::url& u) {
  http::tcp::resolver resolver(p.ioc);
  auto& tcp = http::beast::get_lowest_layer(p.ws);
  tcp.connect(resolver.resolve(u.host, std::to_string(u.port)));
  if constexpr (!std::is_same_v<std::decay_t<decltype(p.ws.next_layer())>,
                                http::beast::tcp_stream>) {
    auto& tls = p.ws.next_layer();
    if (!SSL_set_tlsext_host_name(tls.native_handle(), u.host.c_str()))
      throw std::runtime_error("cannot set SNI");
    tls.set_verify_mode(http::ssl::verify_peer);
    tls.set_verify_callback(http::ssl::host_name_verification(u.host));
    tls.handshake(http::ssl::stream_base::client);
  }
  p.ws.handshake(u.host_header(), u.target());
}

}  // namespace

ws_client::ws_client(const std::string& url_text, const std::string& ca_file)
    : tls_(http::ssl::context::tls_client) {
  auto u = http::url::parse(url_text);
  if (!u.has_value()) throw std::runtime_error("bad WebSocket URL " + url_text);
  try {
    if (u->tls()) {
      tls_.set_default_verify_paths();
      if (!ca_file.empty()) tls_.load_verify_file(ca_file);
      auto p = std::make_unique<impl_for<http::ssl::stream<http::beast::tcp_stream>>>(tls_);
      open(*p, *u);
      impl_ = std::move(p);
    } else {
      auto p = std::make_unique<impl_for<http::beast::tcp_stream>>();
      open(*p, *u);
      impl_ = std::move(p);
    }
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("WebSocket " + url_text + ": " + e.what());
  }
  impl_->start_read();
}

ws_client::~ws_client() = default;

void ws_client::send(const std::string& text) {
  bool done = false, ok = false;
  impl_->async_send(text, [&](bool success) {
    done = true;
    ok = success;
  });
  if (!impl_->run_until([&] { return done; }, steady::now() + std::chrono::seconds{10}) || !ok)
    throw std::runtime_error("WebSocket send failed");
}

std::optional<std::string> ws_client::receive(std::chrono::milliseconds timeout) {
  impl_->run_until([&] { return !impl_->inbox.empty() || impl_->closed; }, steady::now() + timeout);
  if (impl_->inbox.empty()) return std::nullopt;
  auto msg = std::move(impl_->inbox.front());
  impl_->inbox.pop_front();
  return msg;
}

std::optional<nlohmann::json> ws_client::wait_for(
    const std::function<bool(const nlohmann::json&)>& pred, std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() < 0) left = std::chrono::milliseconds{0};
    auto text = receive(left);
    if (!text) return std::nullopt;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_discarded() && pred(j)) return j;
  }
}

std::optional<nlohmann::json> ws_client::join(const std::string& token,
                                              std::chrono::milliseconds timeout) {
  send(nlohmann::json{{"action", "joinChannel"}, {"data", {{"authorizationToken", token}}}});
  return wait_for([](const nlohmann::json& j) { return j.is_object() && j.contains("status"); },
                  timeout);
}

bool ws_client::closed() const {
  return impl_->closed;
}

}  // namespace tokenbroker::test
