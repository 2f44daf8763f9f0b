// The outbound client: its TLS contexts (one per set of CA and certificate files, shared by
// every client that uses the same ones) and its connections' header reads.
#include "http/client.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdlib.h>
#include <thread>
#include <vector>

using namespace tokenbroker;

TEST_CASE("clients_with_the_same_tls_files_share_one_context_and_others_get_their_own") {
  net::io_context io;
  http::client_options plain;
  http::client a(io.get_executor(), plain), b(io.get_executor(), plain);
  CHECK(&a.tls_context() == &b.tls_context());

  http::client_options with_ca;
  with_ca.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  http::client c(io.get_executor(), with_ca);
  CHECK(&c.tls_context() != &a.tls_context());
  http::client d(io.get_executor(), with_ca);
  CHECK(&c.tls_context() == &d.tls_context());

  // Verification stays on in the shared context.
  CHECK(SSL_CTX_get_verify_mode(a.tls_context().native_handle()) == SSL_VERIFY_PEER);
}

TEST_CASE("a_context_lives_as_long_as_a_client_uses_it") {
  net::io_context io;
  http::client_options o;
  o.ca_file = "/etc/ssl/certs/ca-certificates.crt";
  auto first = std::make_unique<http::client>(io.get_executor(), o);
  std::weak_ptr seen = http::tls_contexts(o.ca_file, {}, {}).first;
  first.reset();
  CHECK(seen.expired());  // nobody holds it: freed, not cached forever
}

TEST_CASE("an_unreadable_ca_file_is_refused_with_its_name") {
  net::io_context io;
  http::client_options o;
  o.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_WITH_AS(http::client(io.get_executor(), o),
                       doctest::Contains("/nonexistent/ca.pem"), std::runtime_error);
}

TEST_CASE("a_ca_file_rewritten_in_place_gets_a_new_context") {
  // A reload after rotating the CA at the same path must not keep the old one's certificates.
  char dir[] = "/tmp/tb-client-test-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string ca = std::string(dir) + "/ca.pem";
  auto copy = [&](std::size_t certs) {
    // The first `certs` certificates of the system bundle: a valid PEM file of a different size.
    std::ifstream in("/etc/ssl/certs/ca-certificates.crt");
    std::ofstream out(ca, std::ios::trunc);
    std::string line;
    std::size_t ended = 0;
    while (ended < certs && std::getline(in, line)) {
      out << line << '\n';
      if (line == "-----END CERTIFICATE-----") ++ended;
    }
  };
  copy(1);
  net::io_context io;
  http::client_options o;
  o.ca_file = ca;
  http::client before(io.get_executor(), o);
  copy(2);
  http::client after(io.get_executor(), o);
  CHECK(&before.tls_context() != &after.tls_context());
  std::filesystem::remove_all(dir);
}

namespace {

namespace beast = http::beast;
namespace bhttp = http::bhttp;
using http::tcp;

// The peer of read_header's test: one scripted exchange per accepted connection, in order.
class scripted_upstream {
 public:
  explicit scripted_upstream(std::vector<std::function<void(tcp::socket&)>> scripts)
      : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)),
        thread_([this, scripts = std::move(scripts)] {
          for (const auto& script : scripts) {
            tcp::socket s(io_);
            acceptor_.accept(s);
            script(s);
          }
        }) {}
  ~scripted_upstream() { thread_.join(); }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }

 private:
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

void send(tcp::socket& s, std::string_view bytes) { net::write(s, net::buffer(bytes)); }

// Blocks until the client closes its end (or resets it).
void until_closed(tcp::socket& s) {
  char c;
  boost::system::error_code ec;
  while (!ec) s.read_some(net::buffer(&c, 1), ec);
}

using response_parser = bhttp::response_parser<bhttp::buffer_body>;

}  // namespace

TEST_CASE("read_header_reads_a_header_in_pieces_and_keeps_to_its_deadline") {
  // Header reads on a plain connection go to the socket directly under the connection's own
  // deadline (not Beast's timer): what they must still do.
  scripted_upstream up({
      [](tcp::socket& s) {  // a header in two writes, then silence
        send(s, "HTTP/1.1 204 No Content\r\nX-Part: ");
        send(s, "two\r\n\r\n");
        until_closed(s);
      },
      [](tcp::socket& s) {  // two answers, the second after the first read's deadline
        send(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past that deadline
        send(s, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        until_closed(s);
      },
      [](tcp::socket& s) { send(s, "HTTP/1.1 200 OK\r\nContent-Le"); },  // cut mid-header
      [](tcp::socket&) {},                                                // closed at once
  });
  net::io_context io;
  http::client cl(io.get_executor(), {});
  auto base = http::url::parse(up.url()).value();
  auto script = [&]() -> awaitable<void> {
    auto soon = [] { return steady_clock::now() + std::chrono::seconds(5); };
    {
      auto c = (co_await cl.acquire(base, soon())).value();
      response_parser p;
      CHECK(!(co_await c->read_header(p, soon())));
      CHECK(p.get().result_int() == 204);
      CHECK(p.get()["X-Part"] == "two");
      // Nothing more comes: the deadline ends the read, and the connection with it.
      response_parser silent;
      auto started = steady_clock::now();
      auto ec = co_await c->read_header(silent, started + std::chrono::milliseconds(100));
      CHECK(ec == beast::error::timeout);
      CHECK(steady_clock::now() - started >= std::chrono::milliseconds(100));
      CHECK(http::io_error(ec, "read").code == errc::timeout);
      CHECK(!c->tcp().socket().is_open());
    }
    {
      // A short deadline met, then a longer one: the first must not cut the second read.
      auto c = (co_await cl.acquire(base, soon())).value();
      response_parser first;
      CHECK(!(co_await c->read_header(first, steady_clock::now() + std::chrono::milliseconds(100))));
      CHECK(first.get().result_int() == 200);
      response_parser second;
      auto ec = co_await c->read_header(second, soon());
      CHECK_MESSAGE(!ec, ec.message());
      CHECK(second.get().result_int() == 202);
    }
    {
      auto c = (co_await cl.acquire(base, soon())).value();
      response_parser p;
      CHECK(co_await c->read_header(p, soon()) == bhttp::error::partial_message);
    }
    {
      auto c = (co_await cl.acquire(base, soon())).value();
      response_parser p;
      CHECK(co_await c->read_header(p, soon()) == bhttp::error::end_of_stream);
    }
  };
  net::co_spawn(io, script(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}
