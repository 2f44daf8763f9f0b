// The local HTTP/1.1 server: one session loop serves both unix-socket and TCP connections.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <variant>

#include <boost/asio/local/stream_protocol.hpp>

#include "core/error.hpp"
#include "http/beast.hpp"
#include "http/request_view.hpp"

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

/// The quick path's answer: `json` is a 200 answer's body (application/json, no-store, sent as
/// it is) written straight from these bytes, with no Beast message; `other` is any other
/// answer. Neither: the request goes on to Beast's parser and dispatch. `json` need only
/// outlive the call that returned it (the server copies it at once).
struct quick_answer {
  std::string_view json;
  std::optional<response> other;
  quick_answer() = default;
  quick_answer(std::nullopt_t) {}                            // NOLINT: declined
  quick_answer(response r) : other(std::move(r)) {}          // NOLINT
  quick_answer(std::optional<response> r) : other(std::move(r)) {}  // NOLINT
  static quick_answer ok_json(std::string_view body) {
    quick_answer a;
    a.json = body;
    return a;
  }
  bool declined() const noexcept { return json.empty() && !other; }
};

/// Answers a plain GET without a body (parse_simple_request) at once when it can, straight from
/// the connection's buffer; nothing sends it on to Beast's parser and dispatch. Exceptions are
/// handled as dispatch's are.
using quick_fn = std::function<quick_answer(const request_view&, const peer_info&)>;

using unix_stream = beast::basic_stream<net::local::stream_protocol>;

/// A request handed over after its header, body unread: the handler streams the body from
/// `parser` (no body limit is set) and writes the response on `stream` itself.
struct streamed_request {
  std::variant<beast::tcp_stream*, unix_stream*> stream;
  beast::flat_buffer& buffer;  // bytes already read from the stream belong to the parser
  // The connection's buffer for header bytes written out, which the handler may use: its
  // capacity stays from call to call, and it is wiped when the connection ends. A handler that
  // puts a secret in it wipes it (wipe_bytes) when done.
  std::string& scratch;
  request_reader& parser;
  const peer_info& peer;
  const server_limits& limits;
};

/// What a streaming handler did: either it wrote the whole response (`keep_alive` tells whether
/// the connection may serve another request), or it leaves `reply` for the server to write (the
/// connection then closes if the request body was not read to its end).
struct stream_outcome {
  std::optional<response> reply;
  bool keep_alive = false;
};

/// Requests (judged on the header alone) that go to the streaming handler instead of dispatch.
struct stream_route {
  std::function<bool(const request_reader&)> select;
  std::function<awaitable<stream_outcome>(streamed_request&)> handle;
};

class server {
 public:
  server(net::any_io_executor ex, server_limits limits, dispatch_fn dispatch,
         stream_route streaming = {});
  ~server();

  /// Tried first for every plain GET whose target starts with `target_prefix` (the local API's
  /// token fast path). Other requests skip parse_simple_request: a proxied call paid for a
  /// parse the quick path then declined (3 % of its user-space instructions).
  void set_quick(quick_fn quick, std::string target_prefix) {
    quick_ = std::move(quick);
    quick_prefix_ = "GET " + std::move(target_prefix);
  }

  /// Binds a TCP listener; the endpoint actually bound (port 0 resolved) is returned.
  result<tcp::endpoint> listen_tcp(const tcp::endpoint& ep);
  /// Binds a unix-socket listener at `path` with file mode `mode`. A stale socket file (nobody
  /// accepting) is replaced; a live one, or a non-socket file, is an error.
  result<void> listen_unix(const std::string& path, unsigned mode);
  /// Adopts a listening TCP socket handed over by systemd (socket activation) and returns the
  /// endpoint it is bound to. On failure `fd` stays open and belongs to the caller.
  result<tcp::endpoint> adopt_tcp(int fd);
  /// Adopts a listening unix socket handed over by systemd and returns its path. The socket file
  /// belongs to the .socket unit: it is never unlinked, replaced or chmod-ed here.
  result<std::string> adopt_unix(int fd);
  /// Starts accepting on every bound listener.
  void start();
  /// Stops accepting and closes idle keep-alive connections; the others finish their current
  /// request and close.
  void stop();
  std::size_t connections() const noexcept { return connections_; }
  /// The most connections open at once since the last call; the count restarts from now.
  std::size_t take_peak_connections() noexcept {
    auto peak = peak_connections_;
    peak_connections_ = connections_;
    return peak;
  }

 private:
  struct listener;
  awaitable<void> run_accept(listener& l);
  template <class Protocol>
  awaitable<void> run_session(beast::basic_stream<Protocol> stream, peer_info peer);
  /// What one request read by the request reader asks of the session loop.
  struct exchange {
    std::optional<response> reply;  // to write; none: the handler wrote it, or nothing to send
    bool close_after = false;       // close once `reply` is written (or at once without one)
  };
  template <class Protocol>
  awaitable<exchange> do_parsed_request(beast::basic_stream<Protocol>& stream,
                                        beast::flat_buffer& buffer, std::string& scratch,
                                        const peer_info& peer);

  net::any_io_executor ex_;
  server_limits limits_;
  dispatch_fn dispatch_;
  quick_fn quick_;
  std::string quick_prefix_;  // "GET " and the target prefix set_quick was given
  stream_route streaming_;
  std::list<listener> listeners_;
  std::size_t connections_ = 0;
  std::size_t peak_connections_ = 0;
  bool stopping_ = false;
  /// Every session; stop() closes at once those waiting for a next request with nothing read
  /// yet. One entry per connection, not per request.
  struct session_slot {
    std::function<void()> close;
    bool waiting = false;
  };
  std::list<session_slot> sessions_;
};

}  // namespace tokenbroker::http
