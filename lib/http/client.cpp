#include "http/client.hpp"

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>

#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

#include "core/log.hpp"
#include "core/time.hpp"
#include "http/trust.hpp"

namespace tokenbroker::http {

connection::connection(net::any_io_executor ex, ssl::context& ctx, bool tls, std::string origin)
    : stream_(beast::tcp_stream(std::move(ex)), ctx), tls_(tls), origin_(std::move(origin)) {}

bool connection::looks_alive() {
  auto& sock = tcp().socket();
  if (!sock.is_open()) return false;
  char byte;
  ssize_t n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0: orderly close by the peer; >0: unexpected bytes on an idle connection; -1/EAGAIN: alive.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

error io_error(const boost::system::error_code& ec, std::string_view what) {
  std::string msg = std::string(what) + ": " + ec.message();
  if (ec == beast::error::timeout || ec == net::error::timed_out)
    return make_error(errc::timeout, std::string(what) + ": deadline passed");
  if (ec.category() == net::error::get_ssl_category() ||
      ec.category() == net::ssl::error::get_stream_category())
    return make_error(errc::tls, msg);
  return make_error(errc::transport, msg);
}

awaitable<result<void>> connect_stream(ssl::stream<beast::tcp_stream>& stream, const url& u,
                                       steady_clock::time_point deadline, bool verify) {
  auto& lowest = beast::get_lowest_layer(stream);
  boost::system::error_code cec;
  boost::system::error_code numeric;
  auto address = net::ip::make_address(u.host, numeric);
  if (!numeric) {
    // An address needs no resolver, whose getaddrinfo runs on a thread of its own: a third of
    // the proxy's CPU went to resolving 127.0.0.1 while an upstream pool refilled.
    lowest.expires_at(deadline);
    auto [ec] = co_await lowest.async_connect(tcp::endpoint(address, u.port), use_tuple);
    cec = ec;
  } else {
    auto ex = co_await net::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] =
        co_await resolver.async_resolve(u.host, std::to_string(u.port), use_tuple);
    if (rec) co_return io_error(rec, "resolve " + u.host);
    lowest.expires_at(deadline);
    auto [ec, ep] = co_await lowest.async_connect(endpoints, use_tuple);
    cec = ec;
  }
  if (cec) co_return io_error(cec, "connect to " + u.host_header());
  lowest.socket().set_option(tcp::no_delay(true));
  if (u.tls()) {
    // SNI, then verify the certificate chain and that it names the host we dialled.
    if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
      co_return make_error(errc::tls, "cannot set SNI for " + u.host);
    if (verify) {
      stream.set_verify_mode(ssl::verify_peer);
      stream.set_verify_callback(ssl::host_name_verification(u.host));
    } else {
      stream.set_verify_mode(ssl::verify_none);  // loopback only, by explicit configuration
    }
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
    if (hec) co_return io_error(hec, "TLS handshake with " + u.host_header());
  }
  co_return result<void>{};
}

namespace {

std::shared_ptr<ssl::context> make_context(bool verify, const std::string& ca_file,
                                           const std::string& cert_file,
                                           const std::string& key_file) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (verify) {
    load_system_trust(*ctx);
    ctx->set_verify_mode(ssl::verify_peer);
    if (!ca_file.empty()) {
      boost::system::error_code ec;
      ctx->load_verify_file(ca_file, ec);
      if (ec) throw std::runtime_error("cannot load CA file " + ca_file + ": " + ec.message());
    }
  } else {
    ctx->set_verify_mode(ssl::verify_none);
  }
  if (cert_file.empty() != key_file.empty())
    throw std::runtime_error("a client certificate needs both cert_file and key_file");
  if (!cert_file.empty()) {
    // Both contexts: a loopback server with unverified TLS may still ask for our certificate.
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec)
      throw std::runtime_error("cannot load client certificate " + cert_file + ": " + ec.message());
    ctx->use_private_key_file(key_file, ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot load client key " + key_file + ": " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      throw std::runtime_error("client key " + key_file + " does not match " + cert_file);
  }
  return ctx;
}

// A file's identity for the cache: its name plus what changes when it is replaced or rewritten
// (a rotated CA or client certificate at the same path must be read again on reload).
std::string file_stamp(const std::string& path) {
  if (path.empty()) return {};
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path;  // loading it will report the error
  return path + '\0' + std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + ':' +
         std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) + '.' +
         std::to_string(st.st_mtim.tv_nsec);
}

}  // namespace

std::pair<std::shared_ptr<ssl::context>, std::shared_ptr<ssl::context>> tls_contexts(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file) {
  using entry = std::pair<std::weak_ptr<ssl::context>, std::weak_ptr<ssl::context>>;
  static std::mutex m;
  static std::map<std::tuple<std::string, std::string, std::string>, entry> cache;
  std::lock_guard lock(m);
  auto& e = cache[{file_stamp(ca_file), file_stamp(cert_file), file_stamp(key_file)}];
  auto verified = e.first.lock();
  auto unverified = e.second.lock();
  if (!verified) {
    verified = make_context(true, ca_file, cert_file, key_file);
    e.first = verified;
  }
  if (!unverified) {
    unverified = make_context(false, ca_file, cert_file, key_file);
    e.second = unverified;
  }
  // Forget what nobody uses any more (a reload may have changed the files).
  std::erase_if(cache, [](const auto& kv) {
    return kv.second.first.expired() && kv.second.second.expired();
  });
  return {verified, unverified};
}

client::client(net::any_io_executor ex, client_options options)
    : ex_(std::move(ex)), options_(std::move(options)) {
  std::tie(ctx_, insecure_ctx_) =
      tls_contexts(options_.ca_file, options_.cert_file, options_.key_file);
}

connection_ptr client::take_idle(const url& base, bool check_alive) {
  origin_scratch_.clear();
  base.append_origin(origin_scratch_);  // no allocation per call once the scratch has grown
  auto it = idle_.find(origin_scratch_);
  if (it == idle_.end()) return nullptr;
  auto now = steady_clock::now();
  while (!it->second.empty()) {
    connection_ptr c = std::move(it->second.back());
    it->second.pop_back();
    if (now - c->idle_since_ < options_.idle_timeout && (!check_alive || c->looks_alive())) {
      c->reused_ = true;
      return c;
    }
  }
  return nullptr;
}

awaitable<result<connection_ptr>> client::acquire(const url& base,
                                                  steady_clock::time_point deadline) {
  if (auto c = take_idle(base)) co_return c;
  auto key = base.origin();
  bool verify = options_.verify_tls || !base.loopback();
  auto& ctx = verify ? *ctx_ : *insecure_ctx_;
  auto c = std::make_unique<connection>(ex_, ctx, base.tls(), key);
  auto r = co_await connect_stream(c->tls_stream(), base, deadline, verify);
  if (!r) co_return r.error();
  if (!base.tls()) {
    boost::system::error_code ec;
    c->tcp().socket().non_blocking(true, ec);  // for write_all's first, unwaited write
  }
  co_return c;
}

void client::release(connection_ptr conn) {
  auto& idle = idle_[conn->origin()];
  if (idle.size() >= options_.max_idle_per_origin) return;
  conn->idle_since_ = steady_clock::now();
  conn->tcp().expires_never();
  idle.push_back(std::move(conn));
}

awaitable<result<response>> client::send(const url& base, request req,
                                         std::chrono::milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  req.set(field::host, base.host_header());
  if (!req.has_content_length() && (req.body().size() > 0 || req.method() == verb::post ||
                                    req.method() == verb::put || req.method() == verb::patch))
    req.prepare_payload();
  req.keep_alive(true);

  // A request goes out at most once on a connection that might have been closed under us only if
  // it is idempotent; token-endpoint POSTs are never replayed here (a rotated refresh token sent
  // twice would kill the grant), so the caller's retry policy decides.
  const bool replayable = idempotent(req.method());
  for (int attempt = 0;; ++attempt) {
    auto conn = co_await acquire(base, deadline);
    if (!conn) co_return conn.error();
    auto& c = *conn.value();
    c.expires_at(deadline);
    auto wec = co_await c.write(req);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(options_.max_response_body);
    parser.header_limit(64 * 1024);
    boost::system::error_code rec = wec;
    if (!wec) rec = co_await c.read(parser);
    if (rec) {
      bool stale = c.reused() && closed_by_peer(rec);
      if (stale && attempt == 0 && (replayable || wec)) continue;
      if (rec == bhttp::error::body_limit)
        co_return make_error(errc::malformed, "answer from " + base.host_header() +
                                                  " exceeds the body limit");
      co_return io_error(rec, std::string(wec ? "send to " : "read from ") + base.host_header());
    }
    auto res = parser.release();
    if (res.keep_alive() && !res.need_eof()) release(std::move(conn.value()));
    co_return res;
  }
}

}  // namespace tokenbroker::http
