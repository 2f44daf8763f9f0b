// Certificates generated at start-up for --tls (by support/certs.hpp): a throw-away CA and a server
// certificate for 127.0.0.1, ::1 and localhost, so clients can verify peer and host name against
// the CA.
#pragma once

#include <string>

#include "http/beast.hpp"

namespace tokenbroker::sim {

struct generated_certificates {
  std::string ca_pem;    // the CA certificate, for clients (--ca-out)
  std::string cert_pem;  // the server certificate
  std::string key_pem;   // the server key (PKCS#8)
};

/// A fresh P-256 CA and server certificate (OpenSSL 3 EVP API). Throws std::runtime_error.
generated_certificates generate_certificates();

/// Loads the server certificate (with the CA as chain) and key into a TLS server context.
void use_certificates(http::ssl::context& ctx, const generated_certificates& certs);

}  // namespace tokenbroker::sim
