#include "http/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <filesystem>
#include <variant>

#include "core/log.hpp"
#include "core/spawn.hpp"
#include "http/router.hpp"

namespace tokenbroker::http {

using local = net::local::stream_protocol;

struct server::listener {
  std::variant<tcp::acceptor, local::acceptor> acceptor;
  std::string describe;
  std::string unix_path;  // removed at destruction when set
};

namespace {

peer_info unix_peer(local::socket& s) {
  peer_info p;
  p.unix_socket = true;
  p.address = "unix";
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    p.uid = cred.uid;
    p.gid = cred.gid;
    p.pid = cred.pid;
  }
  return p;
}

peer_info tcp_peer(tcp::socket& s) {
  peer_info p;
  boost::system::error_code ec;
  auto ep = s.remote_endpoint(ec);
  p.address = ec ? "tcp" : ep.address().to_string() + ":" + std::to_string(ep.port());
  return p;
}

// A connection to `path` succeeds only if some process is accepting there.
bool socket_is_live(const std::string& path) {
  net::io_context io;
  local::socket s(io);
  boost::system::error_code ec;
  s.connect(local::endpoint(path), ec);
  return !ec;
}

}  // namespace

server::server(net::any_io_executor ex, server_limits limits, dispatch_fn dispatch)
    : ex_(std::move(ex)), limits_(limits), dispatch_(std::move(dispatch)) {}

server::~server() {
  for (auto& l : listeners_) {
    if (!l.unix_path.empty()) {
      std::error_code ec;
      std::filesystem::remove(l.unix_path, ec);
    }
  }
}

result<tcp::endpoint> server::listen_tcp(const tcp::endpoint& ep) {
  tcp::acceptor a(ex_);
  boost::system::error_code ec;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(errc::io, "cannot listen on " + ep.address().to_string() + ":" +
                                    std::to_string(ep.port()) + ": " + ec.message());
  }
  auto bound = a.local_endpoint();
  listeners_.push_back(listener{std::move(a), bound.address().to_string() + ":" +
                                                  std::to_string(bound.port()), {}});
  return bound;
}

result<void> server::listen_unix(const std::string& path, unsigned mode) {
  namespace fs = std::filesystem;
  std::error_code fec;
  auto st = fs::symlink_status(path, fec);
  if (!fec && fs::exists(st)) {
    if (!fs::is_socket(st))
      return make_error(errc::io, "socket path " + path + " exists and is not a socket");
    if (socket_is_live(path))
      return make_error(errc::io, "socket " + path + " is in use by another process");
    fs::remove(path, fec);  // stale: left behind by a process that died
  }
  local::acceptor a(ex_);
  boost::system::error_code ec;
  a.open(local(), ec);
  // Bind under a restrictive umask so the socket is never briefly more open than `mode`.
  mode_t old = ::umask(0177);
  if (!ec) a.bind(local::endpoint(path), ec);
  ::umask(old);
  if (!ec && ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0)
    ec.assign(errno, boost::system::system_category());
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return make_error(errc::io, "cannot listen on unix socket " + path + ": " + ec.message());
  listeners_.push_back(listener{std::move(a), "unix:" + path, path});
  return {};
}

void server::start() {
  for (auto& l : listeners_) spawn_logged(ex_, "accept " + l.describe, run_accept(l));
}

void server::stop() {
  stopping_ = true;
  for (auto& l : listeners_) {
    std::visit([](auto& a) {
      boost::system::error_code ec;
      a.close(ec);
    }, l.acceptor);
  }
}

awaitable<void> server::run_accept(listener& l) {
  for (;;) {
    if (auto* a = std::get_if<tcp::acceptor>(&l.acceptor)) {
      auto [ec, sock] = co_await a->async_accept(use_tuple);
      if (ec) {
        if (stopping_ || ec == net::error::operation_aborted) co_return;
        log::warn("accept on {} failed: {}", l.describe, ec.message());
        continue;
      }
      if (connections_ >= limits_.max_connections) continue;  // closes `sock`
      auto peer = tcp_peer(sock);
      sock.set_option(tcp::no_delay(true));
      spawn_logged(ex_, "session", run_session(beast::tcp_stream(std::move(sock)), peer));
    } else {
      auto& ua = std::get<local::acceptor>(l.acceptor);
      auto [ec, sock] = co_await ua.async_accept(use_tuple);
      if (ec) {
        if (stopping_ || ec == net::error::operation_aborted) co_return;
        log::warn("accept on {} failed: {}", l.describe, ec.message());
        continue;
      }
      if (connections_ >= limits_.max_connections) continue;
      auto peer = unix_peer(sock);
      spawn_logged(ex_, "session",
                   run_session(beast::basic_stream<local>(std::move(sock)), peer));
    }
  }
}

template <class Protocol>
awaitable<void> server::run_session(beast::basic_stream<Protocol> stream, peer_info peer) {
  ++connections_;
  struct guard {
    std::size_t& n;
    ~guard() { --n; }
  } g{connections_};

  beast::flat_buffer buffer;
  for (;;) {
    // A fresh parser per message, with limits on what a client controls.
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.header_limit));
    parser.body_limit(limits_.body_limit);
    stream.expires_after(buffer.size() > 0 ? limits_.request_timeout : limits_.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset)
      break;
    response res;
    bool close_after = false;
    if (ec) {
      // Malformed or oversized request: answer once with a JSON error, then close.
      bool too_big = ec == bhttp::error::body_limit || ec == bhttp::error::header_limit;
      res = error_response(too_big ? status::payload_too_large : status::bad_request,
                           "bad_request", too_big ? "request too large" : "malformed request");
      close_after = true;
    } else {
      request req = parser.release();
      try {
        res = co_await dispatch_(req, peer);
      } catch (const std::exception& x) {
        log::error("handler for {} {} failed: {}", std::string(req.method_string()),
                   std::string(req.target()), x.what());
        res = error_response(status::internal_server_error, "internal", "internal error");
      }
      res.version(req.version());
      close_after = !req.keep_alive();
    }
    if (stopping_) close_after = true;
    res.keep_alive(!close_after);
    res.prepare_payload();
    stream.expires_after(limits_.write_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, use_tuple);
    if (wec || close_after) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(net::socket_base::shutdown_send, ignored);
  co_return;
}

template awaitable<void> server::run_session<tcp>(beast::basic_stream<tcp>, peer_info);
template awaitable<void> server::run_session<local>(beast::basic_stream<local>, peer_info);

}  // namespace tokenbroker::http
