// In-process fakes for the Privicore I/O tests: a canned HTTP server that records every request,
// a scriptable WebSocket server, and a fixture running one io_context.
#pragma once

#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "privicore/ack_channel.hpp"
#include "privicore/client.hpp"

namespace tokenbroker::privicore::test {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = http::tcp;
using namespace std::chrono_literals;

/// A response with a JSON content type and `body`.
http::response json_answer(int status, std::string body);

/// Answers with `answers` in order, then 500.
std::function<http::response(const http::request&)> in_order(std::vector<http::response> answers);

/// HTTP/1.1 on 127.0.0.1:0 (keep-alive), answering with `respond`, recording each request.
class fake_http_server {
 public:
  explicit fake_http_server(net::io_context& ioc);
  /// http://127.0.0.1:<port><path>
  http::url url(std::string_view path = "/base") const;
  void close();

  std::vector<http::request> requests;
  std::function<http::response(const http::request&)> respond;  // default: 500
  bool silent = false;  // read requests and never answer

 private:
  awaitable<void> run_accept();
  awaitable<void> run_session(tcp::socket socket);
  tcp::acceptor acceptor_;
  std::vector<tcp::socket*> sockets_;
};

/// One accepted WebSocket client, driven by the test; Stream is TCP or TLS over TCP.
template <class Stream>
class basic_ws_peer {
 public:
  template <class... Args>
  explicit basic_ws_peer(Args&&... args) : ws(std::forward<Args>(args)...) {}
  /// The next text frame; "" once the connection is gone.
  awaitable<std::string> read();
  awaitable<void> send(std::string text);
  /// Reads the join frame, answers with an OFF-style ack, returns the join as JSON.
  awaitable<nlohmann::json> accept_join(std::string channel_id = "chn-1");
  /// Sends an X-DPT-CAB-ID acknowledgement (an empty body is sent as null).
  awaitable<void> send_ack(std::string id, int command_status, std::string body = "");
  /// Closes the TCP connection without a closing handshake.
  void drop();

  websocket::stream<Stream> ws;
};
using ws_peer = basic_ws_peer<beast::tcp_stream>;
using wss_peer = basic_ws_peer<http::ssl::stream<beast::tcp_stream>>;

/// A self-signed EC certificate for IP 127.0.0.1, generated per call, in PEM.
struct loopback_certificate {
  loopback_certificate();
  ~loopback_certificate();  // removes ca_file
  std::string cert_pem;
  std::string key_pem;
  std::string ca_file;  // cert_pem in a temporary file, for http::client_options::ca_file
  http::ssl::context server_context{http::ssl::context::tls_server};
};

/// WebSocket server on 127.0.0.1:0; each accept is one client.
class fake_ws_server {
 public:
  explicit fake_ws_server(net::io_context& ioc);
  /// ws://127.0.0.1:<port>/ws, or wss:// for `tls`.
  http::url url(bool tls = false) const;
  awaitable<std::unique_ptr<ws_peer>> accept();
  /// TCP accept, TLS handshake with `ctx`, WebSocket accept; nullptr when any of them fails.
  awaitable<std::unique_ptr<wss_peer>> accept_tls(http::ssl::context& ctx);
  void close();

 private:
  tcp::acceptor acceptor_;
};

/// Channel options for tests: quick reconnects, short timeouts.
ack_channel_options fast_channel();

/// The io_context and HTTP client every fixture shares: building a client loads the system CA
/// store (~60 ms), which would otherwise dominate the suite's run time.
net::io_context& shared_io();
http::client& shared_http();

/// Both fake servers and an HTTP client on one io_context; drains its work on destruction.
struct fixture {
  fixture();
  ~fixture();

  client make_client(std::chrono::milliseconds timeout = 2s,
                     status_method method = status_method::automatic);
  /// Constructs the channel on ws_server (through `via`, default `http`) and spawns its run().
  ack_channel& start_channel(secret token, ack_channel_options options = fast_channel(),
                             http::client* via = nullptr, bool tls = false);
  /// Runs `body` on the io_context until it finishes (failing after `limit`), rethrowing.
  void run(std::function<awaitable<void>()> body, std::chrono::milliseconds limit = 4s);

  net::io_context& ioc = shared_io();
  fake_http_server http_server{ioc};
  fake_ws_server ws_server{ioc};
  http::client& http = shared_http();
  std::optional<http::client> tls_http;  // for tests that trust a loopback_certificate
  std::optional<ack_channel> channel;
};

/// A timer-based pause for sequencing inside a test (never used to wait for a condition).
awaitable<void> yield_once();

}  // namespace tokenbroker::privicore::test
