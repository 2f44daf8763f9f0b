#include "privicore/command_waiter.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "privicore/parse.hpp"

namespace tokenbroker::privicore {
namespace {

/// A poll answer that ends the wait: final, or a refusal that polling again will not change.
bool ends_wait(const result<command_outcome>& r) {
  if (r) return r->state != command_state::pending;
  return r.error().code == errc::http_status &&
         (r.error().status == 401 || r.error().status == 403);
}

}  // namespace

awaitable<result<command_outcome>> wait_for_command(client& api, ack_channel* channel,
                                                    std::string id, const secret* profile,
                                                    steady_clock::time_point deadline,
                                                    std::chrono::milliseconds poll_interval,
                                                    std::uint64_t sent_generation) {
  std::uint64_t trusted_generation = sent_generation;  // the join whose acks cover this command
  std::string last_problem;
  net::steady_timer pause(co_await net::this_coro::executor);

  auto poll = [&]() -> awaitable<std::optional<result<command_outcome>>> {
    auto r = co_await api.command_status(id, profile);
    if (ends_wait(r)) co_return r;
    last_problem = r ? std::string("still pending") : r.error().describe();
    co_return std::nullopt;
  };

  for (;;) {
    auto now = steady_clock::now();
    if (now >= deadline)
      co_return make_error(errc::timeout, "command " + sanitize(id, 80) + " did not finish in time" +
                                              (last_problem.empty() ? "" : " (last poll: " +
                                                                               last_problem + ")"));
    if (channel && channel->joined()) {
      if (auto buffered = channel->acknowledged(id)) co_return *buffered;
      auto generation = channel->generation();
      if (generation != trusted_generation) {
        // Joined after the command was sent, or reconnected: its ack may be gone (§4.6).
        log::debug("privicore command {}: channel generation {}, polling once", sanitize(id, 80),
                   generation);
        if (auto done = co_await poll()) co_return std::move(*done);
        trusted_generation = generation;
        continue;
      }
      if (auto outcome = co_await channel->wait(id, deadline)) co_return *outcome;
      continue;  // deadline, or the channel changed state: re-evaluate
    }
    if (channel)
      if (auto buffered = channel->acknowledged(id)) co_return *buffered;
    if (auto done = co_await poll()) co_return std::move(*done);
    pause.expires_after(std::min<steady_clock::duration>(poll_interval, deadline - steady_clock::now()));
    co_await pause.async_wait(use_tuple);
  }
}

result<void> require_success(const command_outcome& outcome, std::string_view what) {
  if (outcome.state == command_state::succeeded) return {};
  return make_error(errc::rejected, std::string(what) + " was rejected by Privicore" +
                                        (outcome.body.empty() ? "" : ": " + outcome.body));
}

}  // namespace tokenbroker::privicore
