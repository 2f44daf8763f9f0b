// The local HTTP/1.1 server: one session loop serves both unix-socket and TCP connections.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <optional>
#include <string>

#include "core/error.hpp"
#include "http/beast.hpp"

namespace tokenbroker::http {

/// Who is on the other end of a connection.
struct peer_info {
  bool unix_socket = false;
  std::optional<uid_t> uid;  // from SO_PEERCRED on unix sockets
  std::optional<gid_t> gid;
  std::optional<pid_t> pid;
  std::string address;  // "127.0.0.1:5555" for TCP, "unix" otherwise
};

struct server_limits {
  std::size_t header_limit = 16 * 1024;
  std::size_t body_limit = 64 * 1024;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds{60}};
  std::chrono::milliseconds request_timeout{std::chrono::seconds{15}};  // once bytes arrive
  std::chrono::milliseconds write_timeout{std::chrono::seconds{15}};
  std::size_t max_connections = 4096;
};

/// Produces the answer to one fully read request; exceptions become a 500 and are logged.
using dispatch_fn = std::function<awaitable<response>(request&, const peer_info&)>;

class server {
 public:
  server(net::any_io_executor ex, server_limits limits, dispatch_fn dispatch);
  ~server();

  /// Binds a TCP listener; the endpoint actually bound (port 0 resolved) is returned.
  result<tcp::endpoint> listen_tcp(const tcp::endpoint& ep);
  /// Binds a unix-socket listener at `path` with file mode `mode`. A stale socket file (nobody
  /// accepting) is replaced; a live one, or a non-socket file, is an error.
  result<void> listen_unix(const std::string& path, unsigned mode);
  /// Starts accepting on every bound listener.
  void start();
  /// Stops accepting; open connections finish their current request and close.
  void stop();
  std::size_t connections() const noexcept { return connections_; }

 private:
  struct listener;
  awaitable<void> run_accept(listener& l);
  template <class Protocol>
  awaitable<void> run_session(beast::basic_stream<Protocol> stream, peer_info peer);

  net::any_io_executor ex_;
  server_limits limits_;
  dispatch_fn dispatch_;
  std::list<listener> listeners_;
  std::size_t connections_ = 0;
  bool stopping_ = false;
};

}  // namespace tokenbroker::http
