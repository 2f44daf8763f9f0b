#include "http/trust.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace tokenbroker::http {

namespace fs = std::filesystem;

namespace {

// "9d04f354.0": a CA certificate's subject hash, as OpenSSL's directory lookup names it.
bool is_hash_link(std::string_view name) {
  auto dot = name.find('.');
  if (dot != 8 || dot + 1 == name.size()) return false;
  auto hex = name.substr(0, 8), n = name.substr(9);
  return hex.find_first_not_of("0123456789abcdef") == std::string_view::npos &&
         n.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

bool hashed_dir_covers(const std::string& bundle, const std::string& dir) {
  std::error_code ec;
  auto real_dir = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(real_dir, ec)) return false;
  auto real_bundle = fs::canonical(bundle, ec);
  if (ec || real_bundle.parent_path() != real_dir) return false;
  for (fs::directory_iterator it(real_dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_hash_link(it->path().filename().string())) return true;
  return false;
}

trust_source load_system_trust(boost::asio::ssl::context& ctx, const std::string& bundle,
                               const std::string& dir) {
  SSL_CTX* native = ctx.native_handle();
  if (hashed_dir_covers(bundle, dir) && SSL_CTX_load_verify_dir(native, dir.c_str()) == 1)
    return trust_source::hashed_dir;
  // As OpenSSL's default paths: whatever of the two exists. Neither is not an error here: with
  // no CA loaded, every verified handshake fails and says so.
  // (`dir` may be a list, "a:b", as SSL_CERT_DIR may; OpenSSL's lookup reads each on demand.)
  std::error_code ec;
  bool has_bundle = fs::exists(bundle, ec);
  if (has_bundle || !dir.empty())
    SSL_CTX_load_verify_locations(native, has_bundle ? bundle.c_str() : nullptr,
                                  dir.empty() ? nullptr : dir.c_str());
  ERR_clear_error();
  return trust_source::bundle_file;
}

trust_source load_system_trust(boost::asio::ssl::context& ctx) {
  const char* file = std::getenv(X509_get_default_cert_file_env());  // SSL_CERT_FILE
  const char* dir = std::getenv(X509_get_default_cert_dir_env());    // SSL_CERT_DIR
  return load_system_trust(ctx, file ? file : X509_get_default_cert_file(),
                           dir ? dir : X509_get_default_cert_dir());
}

}  // namespace tokenbroker::http
