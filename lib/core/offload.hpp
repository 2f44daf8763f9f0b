// Blocking work (file writes, fsync) run away from the io_context's one thread, so a slow disk
// delays only the coroutine that waits for it, never every client the thread serves.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <type_traits>
#include <utility>

#include "core/asio.hpp"

namespace tokenbroker {

/// Runs `work` on `pool` and resumes the caller on its own executor with what `work` returned;
/// what `work` throws is rethrown to the caller. The caller's io_context counts the work as
/// outstanding meanwhile (its run() does not return before the answer). `R` must be default
/// constructible (the value handed over with an exception).
template <class F, class R = std::invoke_result_t<F&>>
awaitable<R> offload(net::thread_pool& pool, F work) {
  auto ex = co_await net::this_coro::executor;
  // Named, not a temporary in the co_await'ed call: g++ 12 destroys such temporaries twice.
  auto initiate = [&pool, ex](auto handler, F job) {
    auto home = net::prefer(ex, net::execution::outstanding_work.tracked);
    net::post(pool, [job = std::move(job), handler = std::move(handler), home]() mutable {
      std::exception_ptr failure;
      R value{};
      try {
        value = job();
      } catch (...) {
        failure = std::current_exception();
      }
      // The awaiting coroutine resumes where it ran, never on the pool's thread.
      net::post(home, [handler = std::move(handler), failure, value = std::move(value)]() mutable {
        std::move(handler)(failure, std::move(value));
      });
    });
  };
  co_return co_await net::async_initiate<decltype(net::use_awaitable), void(std::exception_ptr, R)>(
      std::move(initiate), net::use_awaitable, std::move(work));
}

}  // namespace tokenbroker
