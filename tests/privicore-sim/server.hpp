// The listener: accepts TCP connections and gives each a session (after a TLS handshake if on).
#pragma once

#include "context.hpp"

namespace tokenbroker::sim {

/// Accepts on `acceptor` until it is closed. `tls` is null for plain HTTP. At most
/// max_connections sessions run at once; extra connections are closed at once.
awaitable<void> run_listener(context& ctx, http::tcp::acceptor& acceptor, http::ssl::context* tls);

}  // namespace tokenbroker::sim
