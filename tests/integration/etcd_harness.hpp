// Drives lib/cluster's etcd_client from a blocking test: the client lives on an io_context run by
// a background thread, the test awaits its calls through futures and polls conditions with a
// deadline while it stops and starts etcd.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "support/etcd.hpp"
#include "support/eventually.hpp"

namespace tokenbroker::test {

class io_thread {
 public:
  io_thread() : work_(net::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}
  ~io_thread() {
    work_.reset();
    ioc_.stop();
    thread_.join();
  }
  net::any_io_executor executor() { return ioc_.get_executor(); }

  /// Runs `task` on the io thread and waits for its value (rethrows what it throws).
  template <class T>
  T await(awaitable<T> task) {
    return net::co_spawn(ioc_, std::move(task), net::use_future).get();
  }
  /// Runs `f` on the io thread and waits for it.
  void post_wait(std::function<void()> f) {
    await([](std::function<void()> g) -> awaitable<void> {
      g();
      co_return;
    }(std::move(f)));
  }

 private:
  net::io_context ioc_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
};

inline cluster::etcd_options options_for(std::vector<std::string> endpoints,
                                         std::chrono::milliseconds timeout = std::chrono::seconds{3}) {
  cluster::etcd_options o;
  for (const auto& e : endpoints) o.endpoints.push_back(http::url::parse(e).value());
  o.timeout = timeout;
  return o;
}

/// What a watch delivered, gathered on the io thread and read from the test thread.
class watch_log {
 public:
  void event(const cluster::watch_event& e) {
    std::lock_guard l(m_);
    events_.push_back(e);
  }
  void resync() {
    std::lock_guard l(m_);
    ++resyncs_;
  }
  std::vector<cluster::watch_event> events() const {
    std::lock_guard l(m_);
    return events_;
  }
  std::size_t size() const {
    std::lock_guard l(m_);
    return events_.size();
  }
  int resyncs() const {
    std::lock_guard l(m_);
    return resyncs_;
  }

 private:
  mutable std::mutex m_;
  std::vector<cluster::watch_event> events_;
  int resyncs_ = 0;
};

}  // namespace tokenbroker::test
