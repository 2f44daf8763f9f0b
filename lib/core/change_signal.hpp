// Wakes every coroutine waiting for "something changed": waiters block on a timer until their
// deadline or until notify(). Single-threaded: use it on one io_context.
#pragma once

#include <cstddef>
#include <list>

#include "core/asio.hpp"

namespace tokenbroker {

class change_signal {
 public:
  /// Waits until notify() (true) or `deadline` (false).
  awaitable<bool> wait(steady_clock::time_point deadline) {
    net::steady_timer t(co_await net::this_coro::executor, deadline);
    waiters_.push_back(&t);
    auto it = std::prev(waiters_.end());
    auto [ec] = co_await t.async_wait(use_tuple);
    waiters_.erase(it);
    co_return ec == net::error::operation_aborted;
  }
  /// Wakes every current waiter.
  void notify() {
    for (auto* t : waiters_) t->cancel();
  }
  /// How many coroutines are waiting.
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  std::list<net::steady_timer*> waiters_;
};

}  // namespace tokenbroker
