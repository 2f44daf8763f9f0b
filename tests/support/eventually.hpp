// Waiting for a condition in a test: poll it, with a bound, instead of sleeping a guessed time.
#pragma once

#include <chrono>
#include <thread>

namespace tokenbroker::test {

/// Polls `cond` every 5 ms until it holds or `timeout` passes; true when it held.
template <class Cond>
bool eventually(Cond cond, std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});  // the poll interval only
  }
  return true;
}

}  // namespace tokenbroker::test
