// Starting background coroutines. Never co_spawn with `detached`: an exception there vanishes.
#pragma once

#include <exception>
#include <string>

#include "core/asio.hpp"
#include "core/log.hpp"

namespace tokenbroker {

/// Runs `task` on `ex`; if it throws, the exception is logged with `name` instead of vanishing.
template <class Executor, class Awaitable>
void spawn_logged(Executor ex, std::string name, Awaitable&& task) {
  net::co_spawn(ex, std::forward<Awaitable>(task), [name = std::move(name)](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log::error("task {} failed: {}", name, x.what());
    } catch (...) {
      log::error("task {} failed with a non-standard exception", name);
    }
  });
}

}  // namespace tokenbroker
