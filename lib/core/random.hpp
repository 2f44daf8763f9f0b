// Cryptographically strong random values (nonces, state, token material) from OpenSSL.
#pragma once

#include <cstddef>
#include <string>

namespace tokenbroker {

/// `bytes` random bytes, hex-encoded. Throws if the system RNG fails (it does not, in practice).
std::string random_hex(std::size_t bytes);
/// `bytes` random bytes, base64url-encoded without padding (RFC 4648 §5).
std::string random_base64url(std::size_t bytes);
/// base64url without padding of arbitrary data.
std::string base64url_encode(std::string_view data);
/// Standard base64 with padding.
std::string base64_encode(std::string_view data);

}  // namespace tokenbroker
