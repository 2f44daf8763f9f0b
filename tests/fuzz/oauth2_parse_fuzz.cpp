// Fuzz target: the OAuth2 token-response parser (lib/oauth2/parse.hpp). Input: a first line
// "STATUS|CONTENT-TYPE|RETRY-AFTER" then the body, so seeds stay readable by hand.
#include "fuzz_support.hpp"
#include "oauth2/parse.hpp"

using namespace tokenbroker;

namespace {

std::string_view next_field(std::string_view& line) {
  auto bar = line.find('|');
  auto f = line.substr(0, bar);
  line = bar == std::string_view::npos ? std::string_view{} : line.substr(bar + 1);
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto in = fuzz::as_view(data, size);
  auto nl = in.find('\n');
  auto line = in.substr(0, nl);
  auto body = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  unsigned status = 0;
  for (char c : next_field(line).substr(0, 3))
    if (c >= '0' && c <= '9') status = status * 10 + static_cast<unsigned>(c - '0');
  auto content_type = next_field(line);
  auto retry_after = next_field(line);
  const sys_seconds received{std::chrono::seconds{1'770'000'000}};
  auto r = oauth2::parse_token_response(status, content_type, body, received, retry_after);
  if (r) {
    fuzz::require(!r->access_token.empty(), "a token answer carries an access token");
    fuzz::require(r->expires_at >= received && r->expires_at <= received + oauth2::max_expires_in,
                  "expires_at lies within max_expires_in of receipt");
  } else {
    fuzz::require(r.error().retry_after <= oauth2::max_retry_after, "retry_after is bounded");
    fuzz::require(r.error().message.size() < 512, "error messages are sanitized and bounded");
  }
  (void)oauth2::sanitize(in);
  return 0;
}
