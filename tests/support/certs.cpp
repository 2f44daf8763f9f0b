#include "support/certs.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace tokenbroker::test {
namespace {

template <class T, void (*Free)(T*)>
struct deleter {
  void operator()(T* p) const noexcept { Free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, deleter<EVP_PKEY, EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, deleter<X509, X509_free>>;
using bio_ptr = std::unique_ptr<BIO, deleter<BIO, BIO_free_all>>;

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("TLS certificate generation: " + what);
}

pkey_ptr new_key() {
  pkey_ptr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  check(ext != nullptr, value);
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

void add_name(X509_NAME* name, const char* field, const std::string& value) {
  check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                   0) == 1,
        std::string("subject ") + field);
}

// A certificate for `subject_key`, self-signed when `issuer` is null (then it is a CA).
x509_ptr new_cert(EVP_PKEY* subject_key, const std::string& organization,
                  const cert_request& request, X509* issuer, EVP_PKEY* issuer_key) {
  x509_ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial) == 1, "RAND_bytes");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  check(bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())), "serial");
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  add_name(name, "O", organization);
  add_name(name, "CN", request.common_name);
  X509* signer = issuer ? issuer : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1, "issuer");
  check(X509_set_pubkey(cert.get(), subject_key) == 1, "X509_set_pubkey");
  add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (!issuer) {
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
    add_ext(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    if (!request.extended_key_usage.empty())
      add_ext(cert.get(), signer, NID_ext_key_usage, request.extended_key_usage);
    if (!request.alt_names.empty())
      add_ext(cert.get(), signer, NID_subject_alt_name, request.alt_names);
  }
  check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

std::string pem_of(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string to_pem(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  return pem_of(bio.get());
}

std::string to_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return pem_of(bio.get());
}

}  // namespace

struct test_ca::impl {
  std::string organization;
  pkey_ptr key;
  x509_ptr cert;
  std::string pem;
};

test_ca::test_ca(const std::string& common_name, const std::string& organization)
    : impl_(std::make_unique<impl>()) {
  impl_->organization = organization;
  impl_->key = new_key();
  impl_->cert =
      new_cert(impl_->key.get(), organization, {common_name, {}, {}}, nullptr, impl_->key.get());
  impl_->pem = to_pem(impl_->cert.get());
}

test_ca::~test_ca() = default;

const std::string& test_ca::cert_pem() const noexcept {
  return impl_->pem;
}

issued_cert test_ca::issue(const cert_request& request) const {
  auto key = new_key();
  auto cert =
      new_cert(key.get(), impl_->organization, request, impl_->cert.get(), impl_->key.get());
  return {to_pem(cert.get()), to_pem(key.get())};
}

}  // namespace tokenbroker::test
