// Throw-away X.509 certificates for tests, made in-process with OpenSSL 3: a CA and the server
// and client certificates it signs (P-256 keys, valid from an hour ago for 30 days). Used by
// privicore-sim's --tls and by the etcd fixture's TLS mode.
#pragma once

#include <memory>
#include <string>

namespace tokenbroker::test {

/// What a certificate is for; the fields go into its extensions as OpenSSL config strings.
struct cert_request {
  std::string common_name;
  std::string extended_key_usage = "serverAuth";  // e.g. "clientAuth", "serverAuth,clientAuth"
  std::string alt_names;  // subjectAltName, e.g. "IP:127.0.0.1,DNS:localhost"; empty: none
};

/// A certificate and its private key, both PEM (the key PKCS#8, unencrypted).
struct issued_cert {
  std::string cert_pem;
  std::string key_pem;
};

class test_ca {
 public:
  /// A fresh self-signed CA. Throws std::runtime_error if OpenSSL fails.
  explicit test_ca(const std::string& common_name,
                   const std::string& organization = "tokenbroker tests");
  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;
  ~test_ca();

  /// The CA certificate (PEM), for whoever verifies what it signs.
  const std::string& cert_pem() const noexcept;
  /// A new key and a certificate for it signed by this CA. Throws std::runtime_error.
  issued_cert issue(const cert_request& request) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tokenbroker::test
