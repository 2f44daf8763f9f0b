// The outbound client's TLS contexts: one per set of CA and certificate files, shared by every
// client that uses the same ones (a context holds the parsed system CA bundle).
#include "http/client.hpp"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <stdlib.h>

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
