// Namespace aliases and vocabulary shared by every coroutine in tokenbroker.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace tokenbroker {

namespace net = boost::asio;
using net::awaitable;

/// Completion token that reports errors as values: `auto [ec, n] = co_await op(..., use_tuple);`
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

using steady_clock = std::chrono::steady_clock;
using system_clock = std::chrono::system_clock;
using namespace std::chrono_literals;

}  // namespace tokenbroker
