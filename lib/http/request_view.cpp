#include "http/request_view.hpp"

#include <array>
#include <cstdint>

#include <boost/beast/core/string.hpp>

#include "http/list.hpp"

namespace tokenbroker::http {

request_view::request_view(const bhttp::request_header<>& h)
    : method_(h.method()), target_(h.target()), version_(h.version()), beast_(&h) {}

request_view::request_view(const request_reader& r)
    : method_(r.method()), target_(r.target()), version_(r.version()), reader_(&r) {}

request_view::request_view(verb method, std::string_view target, unsigned version,
                           std::span<const field_view> fields)
    : method_(method), target_(target), version_(version), fields_(fields) {}

std::optional<std::string_view> request_view::field(std::string_view name) const {
  if (beast_) {
    auto it = beast_->find(name);
    if (it == beast_->end()) return std::nullopt;
    return std::string_view(it->value());
  }
  if (reader_) {
    for (const auto& f : *reader_)
      if (beast::iequals(f.name_string(), name)) return f.value();
    return std::nullopt;
  }
  for (const auto& f : fields_)
    if (beast::iequals(f.name, name)) return f.value;
  return std::nullopt;
}

namespace {

// RFC 9110 §5.6.2 token characters, what this parser takes as is in a field value (printable
// ASCII, space and tab) and in a target (printable ASCII): one table lookup per byte.
constexpr std::uint8_t tchar = 1, plain_value = 2, visible = 4;
constexpr auto char_classes = [] {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0x20; c <= 0x7e; ++c) t[static_cast<std::size_t>(c)] = plain_value | visible;
  t[' '] = plain_value;
  t['\t'] = plain_value;
  for (int c = 0; c < 256; ++c)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      t[static_cast<std::size_t>(c)] |= tchar;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] |= tchar;
  return t;
}();

bool all_of_class(std::string_view s, std::uint8_t cls) {
  for (char c : s)
    if (!(char_classes[static_cast<unsigned char>(c)] & cls)) return false;
  return true;
}

// Fields that frame a body or ask for more than one exchange: the full parser's business.
bool refused_field(std::string_view name) {
  switch (name.size()) {
    case 6: return beast::iequals(name, "expect");
    case 7: return beast::iequals(name, "upgrade");
    case 14: return beast::iequals(name, "content-length");
    case 17: return beast::iequals(name, "transfer-encoding");
    default: return false;
  }
}

// The Connection value's tokens, when each is "close" or "keep-alive"; anything else (upgrade,
// a hop-by-hop field list) is for the full parser.
bool read_connection(std::string_view v, bool& close, bool& keep_alive) {
  return for_each_element(v, [&](std::string_view token) {
    if (beast::iequals(token, "close")) close = true;
    else if (beast::iequals(token, "keep-alive")) keep_alive = true;
    else return false;
    return true;
  });
}

}  // namespace

std::optional<simple_request> parse_simple_request(std::string_view data,
                                                   std::size_t header_limit) {
  auto end = data.substr(0, header_limit).find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  simple_request r;
  r.header_bytes = end + 4;
  std::string_view head = data.substr(0, end + 2);  // every line with its CRLF

  auto eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  head.remove_prefix(eol + 2);
  if (!line.starts_with("GET /")) return std::nullopt;
  line.remove_prefix(4);
  auto sp = line.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  r.target = line.substr(0, sp);
  if (!all_of_class(r.target, visible)) return std::nullopt;
  auto version = line.substr(sp + 1);
  if (version == "HTTP/1.1") r.version = 11;
  else if (version == "HTTP/1.0") r.version = 10;
  else return std::nullopt;

  bool close = false, keep_alive = false, connection_seen = false;
  while (!head.empty()) {
    eol = head.find("\r\n");
    line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;  // obs-fold too
    auto name = line.substr(0, colon);
    auto value = line.substr(colon + 1);
    // A bare LF or CR fails these too.
    if (!all_of_class(name, tchar) || !all_of_class(value, plain_value) || refused_field(name))
      return std::nullopt;
    value = trim_ows(value);
    if (name.size() == 10 && beast::iequals(name, "connection")) {
      if (connection_seen || !read_connection(value, close, keep_alive)) return std::nullopt;
      connection_seen = true;
    }
    if (r.field_count == r.fields.size()) return std::nullopt;
    r.fields[r.field_count++] = field_view{name, value};
  }
  // As Beast's message::keep_alive() reads the first Connection field.
  r.keep_alive = r.version >= 11 ? !close : keep_alive;
  return r;
}

}  // namespace tokenbroker::http
