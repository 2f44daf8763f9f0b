// One deadline per connection for reads on its raw socket, moved without a timer operation.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "http/beast.hpp"

namespace tokenbroker::http {

/// Calls `expire` (which closes the socket, failing the read in progress) once the armed
/// deadline passes. Arming again moves the deadline without touching the timer unless it must
/// fire earlier: the wait in progress finds the later deadline when it completes and waits
/// again. Beast's basic_stream arms and cancels its timer around every operation (a timer
/// queue update and a cancelled handler run through the scheduler each time).
class read_deadline {
 public:
  read_deadline(const net::any_io_executor& ex, std::function<void()> expire)
      : s_(std::make_shared<state>(ex, std::move(expire))) {}
  read_deadline(const read_deadline&) = delete;
  read_deadline& operator=(const read_deadline&) = delete;
  ~read_deadline() {
    s_->done = true;  // a wait still pending finds this and leaves `expire` uncalled
    s_->timer.cancel();
  }

  /// `expire` runs at `at`, unless disarm() or another arm comes first.
  void arm_at(steady_clock::time_point at) {
    s_->deadline = at;
    if (!s_->waiting || s_->timer.expiry() > s_->deadline) wait(s_);
  }
  /// `expire` runs `d` from now, unless disarm() or another arm comes first.
  void arm(std::chrono::milliseconds d) { arm_at(steady_clock::now() + d); }
  void disarm() { s_->deadline = steady_clock::time_point::max(); }

 private:
  struct state {
    state(const net::any_io_executor& ex, std::function<void()> e)
        : timer(ex), expire(std::move(e)) {}
    net::steady_timer timer;
    steady_clock::time_point deadline = steady_clock::time_point::max();
    std::function<void()> expire;
    bool waiting = false, done = false;
  };

  static void wait(const std::shared_ptr<state>& s) {
    s->waiting = true;
    s->timer.expires_at(s->deadline);  // cancels a wait still pending: it returns below
    s->timer.async_wait([s](boost::system::error_code ec) {
      if (ec == net::error::operation_aborted || s->done) return;
      s->waiting = false;
      if (s->deadline == steady_clock::time_point::max()) return;  // disarmed meanwhile
      if (steady_clock::now() < s->deadline) return wait(s);       // moved later meanwhile
      s->deadline = steady_clock::time_point::max();
      s->expire();
    });
  }

  std::shared_ptr<state> s_;
};

}  // namespace tokenbroker::http
