#include "core/secret.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <string.h>  // explicit_bzero

#include <ostream>

namespace tokenbroker {

secret& secret::operator=(const secret& other) {
  if (this != &other) {
    wipe();
    value_ = other.value_;
  }
  return *this;
}

secret& secret::operator=(secret&& other) noexcept {
  if (this != &other) {
    wipe();
    value_ = std::move(other.value_);
    other.value_.clear();
  }
  return *this;
}

secret::~secret() { wipe(); }

void secret::wipe() noexcept { wipe_bytes(value_); }

void wipe_bytes(std::string& s) noexcept {
  // Bytes past size() keep what a longer earlier content left there.
  s.resize(s.capacity());  // capacity is already reserved: no allocation, nothing thrown
  // glibc's explicit_bzero is memset behind a compiler barrier: as sure as OPENSSL_cleanse not
  // to be optimised away, and several times faster for the short strings this wipes on every
  // proxied call (callgrind).
  explicit_bzero(s.data(), s.size());
  s.clear();
}

std::string secret::fingerprint() const {
  if (value_.empty()) return "none";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(value_.data()), value_.size(), digest);
  return fmt::format("sha256:{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]);
}

bool operator==(const secret& a, const secret& b) noexcept {
  if (a.value_.size() != b.value_.size()) return false;
  return a.value_.empty() || CRYPTO_memcmp(a.value_.data(), b.value_.data(), a.value_.size()) == 0;
}

std::ostream& operator<<(std::ostream& os, const secret& s) {
  return os << "<secret " << s.fingerprint() << ">";
}

}  // namespace tokenbroker
