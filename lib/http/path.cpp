#include "http/path.hpp"

namespace tokenbroker::http {
namespace {

bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool is_sub_delim(unsigned char c) noexcept {
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')':
    case '*': case '+': case ',': case ';': case '=':
      return true;
    default:
      return false;
  }
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes `%XX` at `s[i]`; -1 when malformed.
int escape_at(std::string_view s, std::size_t i) noexcept {
  if (i + 2 >= s.size()) return -1;
  int hi = hex_value(s[i + 1]);
  int lo = hex_value(s[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

error refuse(std::string_view why) {
  return make_error(errc::invalid_argument, "proxy path refused: " + std::string(why));
}

// One segment (between slashes): allowed characters, safe escapes, and not a dot segment.
result<void> check_segment(std::string_view seg) {
  if (seg.empty()) return refuse("empty path segment (\"//\")");
  std::string decoded;
  decoded.reserve(seg.size());
  for (std::size_t i = 0; i < seg.size(); ++i) {
    auto c = static_cast<unsigned char>(seg[i]);
    if (c == '%') {
      int v = escape_at(seg, i);
      if (v < 0) return refuse("malformed percent-escape");
      if (v == '/' || v == '\\' || v == '%' || v < 0x20 || v == 0x7f)
        return refuse("encoded separator, percent sign or control character");
      decoded.push_back(static_cast<char>(v));
      i += 2;
      continue;
    }
    if (!is_unreserved(c) && !is_sub_delim(c) && c != ':' && c != '@')
      return refuse("character not allowed in a path");
    decoded.push_back(static_cast<char>(c));
  }
  std::string_view name = decoded;
  name = name.substr(0, name.find(';'));
  if (name == "." || name == "..") return refuse("dot segment");
  return {};
}

}  // namespace

result<std::string> clean_proxy_path(std::string_view raw) {
  if (raw.empty() || raw == "/") return std::string("/");
  if (raw.front() != '/') return refuse("must start with '/'");
  std::string_view rest = raw.substr(1);
  // A trailing slash is meaningful upstream ("/dir/" vs "/dir") and kept; other empty segments
  // are refused.
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  while (true) {
    auto slash = rest.find('/');
    auto r = check_segment(rest.substr(0, slash));
    if (!r) return r.error();
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return std::string(raw);
}

bool valid_query(std::string_view query) noexcept {
  for (std::size_t i = 0; i < query.size(); ++i) {
    auto c = static_cast<unsigned char>(query[i]);
    if (c == '%') {
      if (escape_at(query, i) < 0) return false;
      i += 2;
      continue;
    }
    if (!is_unreserved(c) && !is_sub_delim(c) && c != ':' && c != '@' && c != '/' && c != '?')
      return false;
  }
  return true;
}

}  // namespace tokenbroker::http
