#include "tls.hpp"

#include "support/certs.hpp"

namespace tokenbroker::sim {

generated_certificates generate_certificates() {
  test::test_ca ca("privicore-sim test CA", "privicore-sim");
  auto server = ca.issue({"localhost", "serverAuth", "IP:127.0.0.1,IP:::1,DNS:localhost"});
  return {ca.cert_pem(), std::move(server.cert_pem), std::move(server.key_pem)};
}

void use_certificates(http::ssl::context& ctx, const generated_certificates& certs) {
  ctx.set_options(http::ssl::context::default_workarounds | http::ssl::context::no_tlsv1 |
                  http::ssl::context::no_tlsv1_1);
  std::string chain = certs.cert_pem + certs.ca_pem;
  ctx.use_certificate_chain(net::buffer(chain));
  ctx.use_private_key(net::buffer(certs.key_pem), http::ssl::context::pem);
}

}  // namespace tokenbroker::sim
