// Fuzz target: the proxy's path cleaner (lib/http/path.hpp). Whatever it accepts must be a path
// that cannot climb out of api_url's path or be read differently upstream: checked here by
// decoding the accepted path and looking for what clean_proxy_path promises to refuse.
#include <cctype>

#include "fuzz_support.hpp"
#include "http/form.hpp"
#include "http/path.hpp"

using namespace tokenbroker;

namespace {

bool hostile_segment(std::string_view seg) {
  auto base = seg.substr(0, seg.find(';'));  // "..;x" is ".." to some servers
  return base == "." || base == "..";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto raw = fuzz::as_view(data, size);
  (void)http::valid_query(raw);
  auto clean = http::clean_proxy_path(raw);
  if (!clean) return 0;
  const std::string& p = *clean;
  fuzz::require(!p.empty() && p.front() == '/', "starts with '/'");
  fuzz::require(p.find("//") == std::string::npos, "no empty segment");
  for (unsigned char c : p)
    fuzz::require(c > 0x20 && c < 0x7f && c != '\\', "printable ASCII, no backslash");
  auto decoded = http::url_decode(p);
  fuzz::require(decoded.has_value(), "escapes are well formed");
  for (unsigned char c : *decoded)
    fuzz::require(c >= 0x20 && c != 0x7f && c != '\\', "no control byte or backslash once decoded");
  // Segment by segment, both raw and decoded: no "." or ".." anywhere, and decoding adds no '/'.
  std::size_t raw_slashes = 0, decoded_slashes = 0;
  for (char c : p) raw_slashes += c == '/';
  for (char c : *decoded) decoded_slashes += c == '/';
  fuzz::require(raw_slashes == decoded_slashes, "no encoded '/'");
  std::string_view d = *decoded;
  for (std::size_t pos = 1; pos <= d.size();) {
    auto next = d.find('/', pos);
    auto seg = d.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos);
    fuzz::require(!hostile_segment(seg), "no dot segment");
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return 0;
}
