#include "http/url.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <charconv>

namespace tokenbroker::http {

result<url> url::parse(std::string_view text) {
  url u;
  auto bad = [&](std::string_view why) {
    return make_error(errc::invalid_argument, "bad URL \"" + std::string(text) + "\": " +
                                                  std::string(why));
  };
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad("expected scheme://host");
  u.scheme = std::string(text.substr(0, sep));
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::uint16_t default_port;
  if (u.scheme == "http" || u.scheme == "ws") default_port = 80;
  else if (u.scheme == "https" || u.scheme == "wss") default_port = 443;
  else return bad("scheme must be http, https, ws or wss");

  std::string_view rest = text.substr(sep + 3);
  if (rest.find('#') != std::string_view::npos) return bad("fragments are not allowed");
  auto path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  rest = path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not allowed");
  if (authority.empty()) return bad("missing host");

  std::string_view port_text;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    u.host = std::string(authority.substr(1, close - 1));
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after IPv6 literal");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return bad("missing host");
  if (port_text.empty()) {
    u.port = default_port;
  } else {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc{} || p != port_text.data() + port_text.size() || v == 0 || v > 65535)
      return bad("bad port");
    u.port = static_cast<std::uint16_t>(v);
  }
  auto q = rest.find('?');
  u.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) u.query = std::string(rest.substr(q + 1));
  if (u.path.empty()) u.path = "/";
  return u;
}

namespace {

// A host as it stands before ":port": an IPv6 address in brackets.
void append_host(std::string& out, std::string_view host) {
  bool bracket = host.find(':') != std::string_view::npos;
  if (bracket) out += '[';
  out += host;
  if (bracket) out += ']';
}

}  // namespace

bool url::loopback() const noexcept {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  return !ec && addr.is_loopback();
}

std::string url::host_header() const {
  std::string h;
  append_host(h, host);
  bool default_port = (port == 80 && !tls()) || (port == 443 && tls());
  if (!default_port) {
    h += ':';
    h += std::to_string(port);
  }
  return h;
}

std::string url::origin() const {
  std::string out;
  append_origin(out);
  return out;
}

void url::append_origin(std::string& out) const {
  out += scheme;
  out += "://";
  append_host(out, host);
  out += ':';
  char digits[8];
  auto end = std::to_chars(digits, digits + sizeof digits, port).ptr;
  out.append(digits, end);
}

std::string url::target() const { return query.empty() ? path : path + "?" + query; }

url url::join(std::string_view suffix) const {
  url u = *this;
  std::string base = path;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (suffix.empty() || suffix.front() != '/') base += '/';
  u.path = base + std::string(suffix);
  u.query.clear();
  return u;
}

}  // namespace tokenbroker::http
