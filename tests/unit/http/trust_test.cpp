#include "http/trust.hpp"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "support/certs.hpp"

namespace tokenbroker::http {
namespace {

namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;

struct temp_dir {
  fs::path path = fs::temp_directory_path() /
                  ("tb-trust-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
  static inline int n = 0;
};

std::unique_ptr<X509, decltype(&X509_free)> parse(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())),
                                                &BIO_free);
  return {PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free};
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

// A CA directory as update-ca-certificates leaves it: the bundle, and a hash link per CA.
void hashed_ca_dir(const fs::path& dir, const test::test_ca& ca) {
  write(dir / "bundle.crt", ca.cert_pem());
  write(dir / "the-ca.pem", ca.cert_pem());
  char hash[16];
  std::snprintf(hash, sizeof hash, "%08lx.0", X509_subject_name_hash(parse(ca.cert_pem()).get()));
  fs::create_symlink("the-ca.pem", dir / hash);
}

// Whether `ctx`'s trust store verifies the certificate `pem` (a server's, issued by a CA).
bool verifies(ssl::context& ctx, const std::string& pem) {
  auto leaf = parse(pem);
  REQUIRE(leaf);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> v(X509_STORE_CTX_new(),
                                                                    &X509_STORE_CTX_free);
  REQUIRE(X509_STORE_CTX_init(v.get(), SSL_CTX_get_cert_store(ctx.native_handle()), leaf.get(),
                              nullptr) == 1);
  return X509_verify_cert(v.get()) == 1;
}

int certificates_held(ssl::context& ctx) {
  return sk_X509_OBJECT_num(X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx.native_handle())));
}

}  // namespace

TEST_CASE("a_hashed_directory_holding_the_bundle_stands_in_for_it_and_nothing_else_does") {
  test::test_ca ca("trust test CA");
  temp_dir hashed, plain, elsewhere;
  hashed_ca_dir(hashed.path, ca);
  write(plain.path / "bundle.crt", ca.cert_pem());
  CHECK(hashed_dir_covers((hashed.path / "bundle.crt").string(), hashed.path.string()));
  // The bundle reached through a symbolic link, as Debian's /usr/lib/ssl/cert.pem is.
  fs::create_symlink(hashed.path / "bundle.crt", elsewhere.path / "cert.pem");
  CHECK(hashed_dir_covers((elsewhere.path / "cert.pem").string(), hashed.path.string()));
  // No hash links; a bundle kept elsewhere; a missing bundle or directory.
  CHECK_FALSE(hashed_dir_covers((plain.path / "bundle.crt").string(), plain.path.string()));
  CHECK_FALSE(hashed_dir_covers((plain.path / "bundle.crt").string(), hashed.path.string()));
  CHECK_FALSE(hashed_dir_covers((hashed.path / "missing.crt").string(), hashed.path.string()));
  CHECK_FALSE(hashed_dir_covers((hashed.path / "bundle.crt").string(),
                                (hashed.path / "missing").string()));
}

TEST_CASE("system_trust_from_a_hashed_directory_loads_nothing_up_front_and_verifies_its_cas") {
  test::test_ca ca("trust test CA"), stranger("another CA");
  auto server = ca.issue({"server", "serverAuth", "DNS:localhost"});
  auto other = stranger.issue({"server", "serverAuth", "DNS:localhost"});
  temp_dir hashed, plain;
  hashed_ca_dir(hashed.path, ca);
  write(plain.path / "bundle.crt", ca.cert_pem());

  ssl::context lazy(ssl::context::tls_client);
  CHECK(load_system_trust(lazy, (hashed.path / "bundle.crt").string(), hashed.path.string()) ==
        trust_source::hashed_dir);
  CHECK(certificates_held(lazy) == 0);  // nothing parsed until a handshake asks
  CHECK(verifies(lazy, server.cert_pem));
  CHECK_FALSE(verifies(lazy, other.cert_pem));

  ssl::context eager(ssl::context::tls_client);
  CHECK(load_system_trust(eager, (plain.path / "bundle.crt").string(), plain.path.string()) ==
        trust_source::bundle_file);
  CHECK(certificates_held(eager) == 1);
  CHECK(verifies(eager, server.cert_pem));
  CHECK_FALSE(verifies(eager, other.cert_pem));

  // Neither file nor directory: nothing is trusted, and nothing throws.
  ssl::context none(ssl::context::tls_client);
  CHECK(load_system_trust(none, (plain.path / "no.crt").string(), (plain.path / "no").string()) ==
        trust_source::bundle_file);
  CHECK_FALSE(verifies(none, server.cert_pem));
}

// Sets an environment variable for a scope, then puts back what was there.
class scoped_env {
 public:
  scoped_env(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~scoped_env() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_CASE("ssl_cert_file_and_ssl_cert_dir_in_the_environment_are_honoured_as_openssl_does") {
  test::test_ca ca("trust test CA");
  auto server = ca.issue({"server", "serverAuth", "DNS:localhost"});
  temp_dir plain, hashed;
  write(plain.path / "bundle.crt", ca.cert_pem());
  hashed_ca_dir(hashed.path, ca);
  {
    // A bundle of the operator's, outside any hashed directory: loaded whole.
    scoped_env file("SSL_CERT_FILE", (plain.path / "bundle.crt").string());
    ssl::context ctx(ssl::context::tls_client);
    CHECK(load_system_trust(ctx) == trust_source::bundle_file);
    CHECK(verifies(ctx, server.cert_pem));
  }
  {
    // Both naming a hashed directory and the bundle in it: looked up on demand.
    scoped_env file("SSL_CERT_FILE", (hashed.path / "bundle.crt").string());
    scoped_env dir("SSL_CERT_DIR", hashed.path.string());
    ssl::context ctx(ssl::context::tls_client);
    CHECK(load_system_trust(ctx) == trust_source::hashed_dir);
    CHECK(verifies(ctx, server.cert_pem));
  }
  {
    // A list of directories: OpenSSL's own way, every one of them searched.
    scoped_env file("SSL_CERT_FILE", (plain.path / "none.crt").string());
    scoped_env dir("SSL_CERT_DIR", (plain.path / "none").string() + ":" + hashed.path.string());
    ssl::context ctx(ssl::context::tls_client);
    CHECK(load_system_trust(ctx) == trust_source::bundle_file);
    CHECK(verifies(ctx, server.cert_pem));
  }
}

}  // namespace tokenbroker::http
