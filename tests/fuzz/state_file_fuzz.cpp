// Fuzz target: the state-file decoder (lib/store/file_store.hpp). Three paths, chosen by the
// first byte: 'J' decodes the rest as the plaintext JSON of a bundle (and checks that a decoded
// bundle survives encode/decode unchanged); 'S' seals the rest under a fixed key and opens it
// again (the round trip must be exact, under another credential name it must fail); anything
// else is opened as an encrypted record under the fixed key, as load() does with a file.
#include "fuzz_support.hpp"
#include "store/file_store.hpp"

using namespace tokenbroker;

namespace {

const secret& fixed_key() {
  static const secret key{std::string(32, '\x42')};
  return key;
}

void check_round_trip(const broker::token_bundle& b) {
  auto again = store::decode_bundle(store::encode_bundle(b));
  fuzz::require(again.has_value(), "an encoded bundle decodes");
  fuzz::require(again->access_token == b.access_token && again->refresh_token == b.refresh_token &&
                    again->expires_at == b.expires_at && again->obtained_at == b.obtained_at &&
                    again->refresh_expires_at == b.refresh_expires_at &&
                    again->grant_id == b.grant_id && again->scope == b.scope &&
                    again->token_type == b.token_type,
                "encode/decode round trip is exact");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = fuzz::as_view(data, size);
  if (!in.empty() && in[0] == 'J') {
    if (auto b = store::decode_bundle(in.substr(1))) check_round_trip(*b);
  } else if (!in.empty() && in[0] == 'S') {
    std::string plain(in.substr(1));
    auto sealed = store::seal(fixed_key(), "privicore", plain);
    auto opened = store::open(fixed_key(), "privicore", sealed);
    fuzz::require(opened.has_value() && *opened == plain, "seal/open round trip is exact");
    fuzz::require(!store::open(fixed_key(), "other", sealed).has_value(),
                  "a record does not open under another credential name");
    if (auto b = store::decode_bundle(*opened)) check_round_trip(*b);
  } else {
    if (auto plain = store::open(fixed_key(), "privicore", in))
      if (auto b = store::decode_bundle(*plain)) check_round_trip(*b);
  }
  return 0;
}
