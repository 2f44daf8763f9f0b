#include "http/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <array>
#include <charconv>
#include <filesystem>
#include <limits>
#include <memory>
#include <variant>

#include "core/log.hpp"
#include "core/secret.hpp"
#include "core/spawn.hpp"
#include "http/deadline.hpp"
#include "http/router.hpp"
#include "http/write.hpp"

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

// Malformed or oversized request: answered once with a JSON error, then the connection closes.
response bad_request_response(const boost::system::error_code& ec) {
  bool too_big = ec == bhttp::error::body_limit || ec == bhttp::error::header_limit;
  return error_response(too_big ? status::payload_too_large : status::bad_request, "bad_request",
                        too_big ? "request too large" : "malformed request");
}

// Room in a connection's read buffer while a streamed body passes through it (the proxy's
// piece size). A flat_buffer reads at most its spare capacity, 512 bytes when new: without this,
// a 1 GiB upload took two million reads.
constexpr std::size_t streaming_read_buffer = 64 * 1024;

// A read buffer this small stays with an idle connection after a streamed body; a larger one
// (a body's pieces) is given back.
constexpr std::size_t kept_read_buffer = 4096;

// Connections taken from the listen queue per turn of the io_context (see run_acceptor).
constexpr std::size_t accept_batch = 64;

// `res`'s status line and fields as they go on the wire, into `out` (reused per connection).
// Beast's serializer walks a buffers_cat_view of every field and the body through several
// composed operations (http/write.hpp). This and the body go out in one gather write instead.
void serialize_header(const response& res, std::string& out) {
  out.clear();
  append_status_line(out, res.version(), res.result_int(), res.reason());
  for (const auto& f : res) append_field(out, f.name_string(), f.value());
  out += "\r\n";
}

// A 200 JSON answer as json_response makes it, header and body, into `out`: the quick path's
// token answers, with no Beast message to build and walk.
void serialize_json_answer(std::string_view body, unsigned version, bool close,
                           std::string& out) {
  out.clear();
  append_status_line(out, version, 200, {});
  out += "Content-Type: application/json\r\nCache-Control: no-store\r\n";
  if (version >= 11 && close) out += "Connection: close\r\n";
  if (version < 11 && !close) out += "Connection: keep-alive\r\n";
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, body.size()).ptr;
  append_field(out, "Content-Length", std::string_view(digits, end - digits));
  out += "\r\n";
  out += body;
}

// A connection to `path` succeeds only if some process is accepting there.
bool socket_is_live(const std::string& path) {
  net::io_context io;
  local::socket s(io);
  boost::system::error_code ec;
  s.connect(local::endpoint(path), ec);
  return !ec;
}

// Accepts connections on `a` and hands each to `serve(socket)` until the acceptor is closed.
// After each completed wait it also takes, without waiting, what else is already queued
// (up to accept_batch): one accept per turn of the io_context let thousands of busy sessions
// starve new clients for seconds (bench: the refresh storm's first answers).
template <class Acceptor, class Serve>
awaitable<void> run_acceptor(Acceptor& a, const std::string& describe, const bool& stopping,
                             Serve serve) {
  boost::system::error_code nb;
  a.non_blocking(true, nb);  // the synchronous accept below then reports would_block at once
  for (;;) {
    auto [ec, sock] = co_await a.async_accept(use_tuple);
    if (ec) {
      if (stopping || ec == net::error::operation_aborted) co_return;
      log::warn("accept on {} failed: {}", describe, ec.message());
      continue;
    }
    serve(std::move(sock));
    for (std::size_t batched = 1; batched < accept_batch && !nb; ++batched) {
      boost::system::error_code more_ec;
      auto more = a.accept(more_ec);
      if (more_ec) break;  // nothing queued (or an error the next async_accept reports)
      serve(std::move(more));
    }
  }
}

}  // namespace

server::server(net::any_io_executor ex, server_limits limits, dispatch_fn dispatch,
               stream_route streaming)
    : ex_(std::move(ex)),
      limits_(limits),
      dispatch_(std::move(dispatch)),
      streaming_(std::move(streaming)) {}

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

result<tcp::endpoint> server::adopt_tcp(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
      (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
    return make_error(errc::io, "passed fd " + std::to_string(fd) + " is not a TCP socket");
  tcp::acceptor a(ex_);
  boost::system::error_code ec;
  a.assign(ss.ss_family == AF_INET ? tcp::v4() : tcp::v6(), fd, ec);
  tcp::endpoint bound;
  if (!ec) bound = a.local_endpoint(ec);
  if (ec) {
    if (a.is_open()) (void)a.release(ec);  // the fd stays the caller's on failure
    return make_error(errc::io, "cannot adopt passed TCP socket: " + ec.message());
  }
  listeners_.push_back(listener{std::move(a), bound.address().to_string() + ":" +
                                                  std::to_string(bound.port()) + " (passed)", {}});
  return bound;
}

result<std::string> server::adopt_unix(int fd) {
  local::acceptor a(ex_);
  boost::system::error_code ec;
  a.assign(local(), fd, ec);
  std::string path;
  if (!ec) path = a.local_endpoint(ec).path();
  if (ec) {
    if (a.is_open()) (void)a.release(ec);
    return make_error(errc::io, "cannot adopt passed unix socket: " + ec.message());
  }
  // unix_path stays empty: the file is the socket unit's, and outlives this process.
  listeners_.push_back(listener{std::move(a), "unix:" + path + " (passed)", {}});
  return path;
}

void server::start() {
  for (auto& l : listeners_) spawn_logged(ex_, "accept " + l.describe, run_accept(l));
}

void server::stop() {
  stopping_ = true;
  for (auto& s : sessions_)
    if (s.waiting) s.close();
  for (auto& l : listeners_) {
    std::visit([](auto& a) {
      boost::system::error_code ec;
      a.close(ec);
    }, l.acceptor);
  }
}

awaitable<void> server::run_accept(listener& l) {
  // A session counts itself in connections_ as soon as it is spawned (co_spawn starts it at
  // once on this thread), so the limit holds within a batch too (tests/unit/http/server_test).
  // (Named first, not built inside the co_await'ed call: g++ 12.)
  if (auto* a = std::get_if<tcp::acceptor>(&l.acceptor)) {
    auto serve = [this](tcp::socket sock) {
      if (connections_ >= limits_.max_connections) return;  // closes `sock`
      auto peer = tcp_peer(sock);
      sock.set_option(tcp::no_delay(true));
      spawn_logged(ex_, "session", run_session(beast::tcp_stream(std::move(sock)), peer));
    };
    co_await run_acceptor(*a, l.describe, stopping_, serve);
  } else {
    auto serve = [this](local::socket sock) {
      if (connections_ >= limits_.max_connections) return;
      auto peer = unix_peer(sock);
      spawn_logged(ex_, "session", run_session(beast::basic_stream<local>(std::move(sock)), peer));
    };
    auto& ua = std::get<local::acceptor>(l.acceptor);
    co_await run_acceptor(ua, l.describe, stopping_, serve);
  }
}

template <class Protocol>
awaitable<void> server::run_session(beast::basic_stream<Protocol> stream, peer_info peer) {
  peak_connections_ = std::max(peak_connections_, ++connections_);
  auto slot = sessions_.insert(sessions_.end(),
                               session_slot{[&stream] { stream.socket().close(); }});
  struct guard {
    server& s;
    std::list<session_slot>::iterator slot;
    ~guard() {
      --s.connections_;
      s.sessions_.erase(slot);
    }
  } g{*this, slot};

  boost::system::error_code nb;
  stream.socket().non_blocking(true, nb);  // answers are first written without waiting
  read_deadline idle(ex_, [&stream] {
    boost::system::error_code ignored;
    stream.socket().close(ignored);
  });
  beast::flat_buffer buffer;
  // The response header's bytes, reused; a token answer's body too (quick path), and a
  // streaming handler's header bytes (streamed_request::scratch), so wiped when the session
  // ends however it ends.
  wiped_string wiped_head;
  std::string& head_out = wiped_head.bytes;
  for (;;) {
    if (stopping_ && buffer.size() == 0) break;
    if (buffer.size() == 0) {
      // Waiting for a next request: stop() may close the connection, and so may the idle
      // deadline. The socket is read directly; Beast's parser takes over below when needed.
      slot->waiting = true;
      idle.arm(limits_.idle_timeout);
      auto [ec, n] = co_await stream.socket().async_read_some(
          buffer.prepare(beast::read_size(buffer, 64 * 1024)), use_tuple);
      idle.disarm();
      slot->waiting = false;
      if (ec) break;  // end of stream, reset, idle deadline or stop()
      buffer.commit(n);
    }
    exchange ex;
    std::optional<simple_request> simple;
    quick_answer quick;
    if (quick_) {
      std::string_view bytes(static_cast<const char*>(buffer.data().data()), buffer.size());
      if (bytes.starts_with(quick_prefix_)) simple = parse_simple_request(bytes, limits_.header_limit);
    }
    if (simple) {
      try {
        quick = quick_(simple->view(), peer);
      } catch (const std::exception& x) {
        log::error("handler for GET {} failed: {}", std::string(simple->target), x.what());
        quick = error_response(status::internal_server_error, "internal", "internal error");
      }
    }
    if (!quick.declined()) {
      ex.close_after = !simple->keep_alive || stopping_;
      buffer.consume(simple->header_bytes);
      if (!quick.json.empty()) {
        serialize_json_answer(quick.json, simple->version, ex.close_after, head_out);
        std::array<net::const_buffer, 1> wire{net::buffer(head_out)};
        boost::system::error_code wec;
        std::size_t written = 0;
        if (!write_now(stream, wire, written, wec))
          wec = co_await write_rest(stream, wire, written, limits_.write_timeout);
        if (wec || ex.close_after) break;
        continue;
      }
      ex.reply = std::move(quick.other);
      ex.reply->version(simple->version);
    } else {
      ex = co_await do_parsed_request(stream, buffer, head_out, peer);
      if (!ex.reply) {
        if (ex.close_after || stopping_) break;
        continue;
      }
    }
    response& res = *ex.reply;
    if (stopping_) ex.close_after = true;
    res.keep_alive(!ex.close_after);
    res.prepare_payload();
    serialize_header(res, head_out);
    std::array<net::const_buffer, 2> wire{net::buffer(head_out), net::buffer(res.body())};
    boost::system::error_code wec;
    std::size_t written = 0;
    if (!write_now(stream, wire, written, wec))
      wec = co_await write_rest(stream, wire, written, limits_.write_timeout);
    wipe_bytes(res.body());  // a token answer that took the full path is not left in the heap
    if (wec || ex.close_after) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(net::socket_base::shutdown_send, ignored);
  co_return;
}

template <class Protocol>
awaitable<server::exchange> server::do_parsed_request(beast::basic_stream<Protocol>& stream,
                                                      beast::flat_buffer& buffer,
                                                      std::string& scratch,
                                                      const peer_info& peer) {
  // A fresh parser per message, with limits on what a client controls. The header comes
  // first: it decides whether the body is streamed or read whole under the body limit.
  request_reader head;
  head.header_limit(static_cast<std::uint32_t>(limits_.header_limit));
  // A declared length is checked against the limit of the path it takes, below.
  head.body_limit(std::numeric_limits<std::uint64_t>::max());
  // A header that arrived whole (the rule) is parsed where it lies; only one still arriving
  // takes Beast's composed read, with its timer.
  boost::system::error_code ec;
  if (buffer.size() > 0) {
    buffer.consume(head.put(buffer.data(), ec));
    if (ec == bhttp::error::need_more) ec = {};
  }
  if (!ec && !head.is_header_done()) {
    stream.expires_after(limits_.request_timeout);  // some of it has arrived
    auto [rec, n] = co_await bhttp::async_read_header(stream, buffer, head, use_tuple);
    ec = rec;
  }
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof ||
      ec == beast::error::timeout || ec == net::error::operation_aborted ||
      ec == net::error::connection_reset)
    co_return exchange{std::nullopt, true};
  if (ec) co_return exchange{bad_request_response(ec), true};

  if (streaming_.select && streaming_.select(head)) {
    streamed_request sr{&stream, buffer, scratch, head, peer, limits_};
    stream_outcome out;
    // Room for the pieces of a large body (or one of unknown length) only.
    auto declared = head.content_length();
    if (head.chunked() || (declared && *declared > buffer.capacity() - buffer.size()))
      buffer.reserve(std::min<std::uint64_t>(declared.value_or(streaming_read_buffer),
                                             streaming_read_buffer));
    try {
      out = co_await streaming_.handle(sr);
    } catch (const std::exception& x) {
      log::error("handler for {} {} failed: {}", std::string(head.method_string()),
                 std::string(head.target()), x.what());
      co_return exchange{std::nullopt, true};  // the response may be half written: close
    }
    // An idle keep-alive connection keeps only what it holds, or a small buffer (freeing one
    // only to take it again for the next request cost an allocation per call).
    if (buffer.capacity() > kept_read_buffer) buffer.shrink_to_fit();
    if (!out.reply) co_return exchange{std::nullopt, !out.keep_alive};
    out.reply->version(head.version());
    bool close_after = !head.is_done() || !head.keep_alive();
    co_return exchange{std::move(out.reply), close_after};
  }

  // The local API: the body whole under the limit, then the request as Beast's message.
  auto declared = head.content_length();
  head.body_limit(limits_.body_limit);
  std::string body;
  head.body_to(&body);
  boost::system::error_code rec;
  if (declared && *declared > limits_.body_limit) {
    rec = bhttp::error::body_limit;
  } else if (!head.is_done()) {  // a request without a body is complete already
    // Room for a declared length at once, as string_body made: no partial copies of the body
    // are left in freed memory by its regrowth.
    if (declared) body.reserve(static_cast<std::size_t>(*declared));
    stream.expires_after(limits_.request_timeout);
    auto [read_ec, rn] = co_await bhttp::async_read(stream, buffer, head, use_tuple);
    rec = read_ec;
  }
  if (rec == net::error::eof || rec == beast::error::timeout ||
      rec == net::error::operation_aborted || rec == net::error::connection_reset)
    co_return exchange{std::nullopt, true};
  if (rec) co_return exchange{bad_request_response(rec), true};

  request req;
  if (head.method() != verb::unknown) req.method(head.method());
  else req.method_string(head.method_string());  // an extension method, as Beast keeps it
  req.target(head.target());
  req.version(head.version());
  for (const auto& f : head) req.insert(f.name(), f.name_string(), f.value());
  req.body() = std::move(body);
  exchange ex;
  try {
    ex.reply = co_await dispatch_(req, peer);
  } catch (const std::exception& x) {
    log::error("handler for {} {} failed: {}", std::string(req.method_string()),
               std::string(req.target()), x.what());
    ex.reply = error_response(status::internal_server_error, "internal", "internal error");
  }
  ex.reply->version(req.version());
  ex.close_after = !req.keep_alive();
  co_return ex;
}

template awaitable<void> server::run_session<tcp>(beast::basic_stream<tcp>, peer_info);
template awaitable<void> server::run_session<local>(beast::basic_stream<local>, peer_info);
template awaitable<server::exchange> server::do_parsed_request<tcp>(beast::basic_stream<tcp>&,
                                                                    beast::flat_buffer&,
                                                                    std::string&,
                                                                    const peer_info&);
template awaitable<server::exchange> server::do_parsed_request<local>(
    beast::basic_stream<local>&, beast::flat_buffer&, std::string&, const peer_info&);

}  // namespace tokenbroker::http
