// The simulator's sessions over plain TCP (session_tls.cpp: over TLS).
#include "session_impl.hpp"

namespace tokenbroker::sim {

template awaitable<void> run_session(context&, http::beast::tcp_stream, bool);

}  // namespace tokenbroker::sim
