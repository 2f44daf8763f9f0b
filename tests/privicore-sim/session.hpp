// One client connection: HTTP/1.1 keep-alive, faults, the streamed endpoints, WebSocket upgrade.
#pragma once

#include "context.hpp"

namespace tokenbroker::sim {

/// Serves requests on `stream` until the peer closes, a deadline passes, a fault ends the
/// connection, or the connection is upgraded to a WebSocket. `loopback_peer` gates /_sim/.
/// Instantiated for beast::tcp_stream and ssl::stream<beast::tcp_stream>.
template <class Stream>
awaitable<void> run_session(context& ctx, Stream stream, bool loopback_peer);

}  // namespace tokenbroker::sim
