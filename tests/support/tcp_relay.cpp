#include "support/tcp_relay.hpp"

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <set>
#include <stdexcept>
#include <thread>

#include "core/asio.hpp"

namespace tokenbroker::test {

using tcp = net::ip::tcp;
using socket_ptr = std::shared_ptr<tcp::socket>;

struct tcp_relay::state {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{net::make_work_guard(ioc)};
  tcp::acceptor acceptor{ioc};
  tcp::endpoint listen_at;
  tcp::endpoint upstream;
  std::set<socket_ptr> open;
  std::thread thread;

  void listen() {
    acceptor.open(listen_at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(listen_at);
    acceptor.listen();
    listen_at = acceptor.local_endpoint();
    net::co_spawn(ioc, accept_loop(), [](std::exception_ptr) {});
  }

  awaitable<void> accept_loop() {
    for (;;) {
      auto down = std::make_shared<tcp::socket>(ioc);
      auto [ec] = co_await acceptor.async_accept(*down, use_tuple);
      if (ec) co_return;  // cut(): the acceptor was closed
      net::co_spawn(ioc, relay(down), [](std::exception_ptr) {});
    }
  }

  awaitable<void> relay(socket_ptr down) {
    auto up = std::make_shared<tcp::socket>(ioc);
    open.insert(down);
    open.insert(up);
    auto [ec] = co_await up->async_connect(upstream, use_tuple);
    if (!ec) {
      net::co_spawn(ioc, pump(up, down), [](std::exception_ptr) {});
      co_await pump(down, up);
    } else {
      close(down);
      close(up);
    }
  }

  awaitable<void> pump(socket_ptr from, socket_ptr to) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
      auto [rec, n] = co_await from->async_read_some(net::buffer(buf), use_tuple);
      if (rec) break;
      auto [wec, m] = co_await net::async_write(*to, net::buffer(buf.data(), n), use_tuple);
      if (wec) break;
    }
    close(from);
    close(to);
  }

  void close(const socket_ptr& s) {
    boost::system::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
    open.erase(s);
  }

  // Runs `f` on the relay's thread and waits for it.
  template <class F>
  void on_thread(F f) {
    net::co_spawn(ioc, [&]() -> awaitable<void> {
      f();
      co_return;
    }, net::use_future).get();
  }
};

tcp_relay::tcp_relay(std::uint16_t upstream_port) : s_(std::make_unique<state>()) {
  auto lo = net::ip::address_v4::loopback();
  s_->listen_at = tcp::endpoint(lo, 0);
  s_->upstream = tcp::endpoint(lo, upstream_port);
  s_->listen();
  s_->thread = std::thread([s = s_.get()] { s->ioc.run(); });
}

tcp_relay::~tcp_relay() {
  cut();
  s_->work.reset();
  s_->ioc.stop();
  s_->thread.join();
}

std::uint16_t tcp_relay::port() const noexcept { return s_->listen_at.port(); }

std::string tcp_relay::endpoint() const { return "http://127.0.0.1:" + std::to_string(port()); }

void tcp_relay::cut() {
  s_->on_thread([this] {
    boost::system::error_code ignored;
    s_->acceptor.close(ignored);
    auto all = s_->open;
    for (const auto& sock : all) s_->close(sock);
  });
}

void tcp_relay::resume() {
  s_->on_thread([this] {
    if (!s_->acceptor.is_open()) s_->listen();
  });
}

}  // namespace tokenbroker::test
