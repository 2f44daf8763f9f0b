// The simulator's sessions over TLS (session.cpp: over plain TCP).
#include "session_impl.hpp"

namespace tokenbroker::sim {

template awaitable<void> run_session(context&, http::ssl::stream<http::beast::tcp_stream>, bool);

}  // namespace tokenbroker::sim
