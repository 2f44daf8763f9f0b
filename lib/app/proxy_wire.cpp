#include "app/proxy_wire.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "http/list.hpp"
#include "http/write.hpp"

namespace tokenbroker::app {

namespace bhttp = http::bhttp;
using http::append_field;
using http::field;

namespace {

constexpr std::string_view k_via = "Via: 1.1 tokenbroker\r\n";
constexpr std::string_view k_token = "{token}";

}  // namespace

void hop_filter::name(std::string_view t) {
  // "keep-alive" and "close" name fields that are dropped anyway (drops()).
  if (!http::beast::iequals(t, "keep-alive") && !http::beast::iequals(t, "close"))
    named_.push_back(t);
}

bool hop_filter::drops(field name, std::string_view name_string) const {
  switch (name) {
    case field::connection:
    case field::keep_alive:
    case field::proxy_connection:
    case field::te:
    case field::trailer:
    case field::upgrade:
    case field::transfer_encoding:
    case field::proxy_authenticate:
    case field::proxy_authorization:
      return true;
    default:
      break;
  }
  return std::any_of(named_.begin(), named_.end(),
                     [&](std::string_view n) { return http::beast::iequals(name_string, n); });
}

std::optional<std::chrono::seconds> preferred_wait(const http::request_reader& h,
                                                   std::chrono::seconds cap) {
  std::optional<std::chrono::seconds> wait;
  each_element(h, field::prefer, [&](std::string_view item) {
    auto eq = item.find('=');
    if (eq == std::string_view::npos ||
        !http::beast::iequals(http::trim_ows(item.substr(0, eq)), "wait"))
      return true;
    auto v = http::trim_ows(item.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    std::int64_t n = -1;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec == std::errc{} && p == v.data() + v.size() && n >= 0)
      wait = std::min(std::chrono::seconds{n}, cap);
    return true;
  });
  return wait;
}

void upstream_head(const http::request_reader& h, const upstream_request& u, std::string& out) {
  out.clear();
  // Room for all of it at once: grown a field at a time, it took four allocations per call.
  std::size_t room = u.target.size() + u.host.size() + u.inject_header.size() +
                     u.inject_format.size() + u.token.size() + k_via.size() + 96;
  for (const auto& f : h) room += f.name_string().size() + f.value().size() + 4;
  out.reserve(room);
  out += h.method_string();
  out += ' ';
  out += u.target;
  out += " HTTP/1.1\r\n";
  append_field(out, "Host", u.host);
  hop_filter hops(h);
  for (const auto& f : h) {
    switch (f.name()) {
      case field::host:
      case field::content_length:
      case field::expect:
      case field::authorization:
        continue;
      case field::prefer:
        if (u.drop_prefer) continue;  // the broker's to honour, not the upstream's
        break;
      default:
        break;
    }
    auto name = f.name_string();
    if (hops.drops(f) || http::beast::iequals(name, "x-dpt-authorization") ||
        http::beast::iequals(name, u.inject_header) || http::beast::iequals(name, "x-token-broker"))
      continue;
    append_field(out, name, f.value());
  }
  // The injected value is written in place: no copy of the token outside this header.
  out += u.inject_header;
  out += ": ";
  auto at = u.inject_format.find(k_token);
  if (at == std::string_view::npos) {
    out += u.inject_format;
  } else {
    out += u.inject_format.substr(0, at);
    out += u.token;
    out += u.inject_format.substr(at + k_token.size());
  }
  out += "\r\n";
  out += k_via;
  if (u.content_length) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, *u.content_length).ptr;
    append_field(out, "Content-Length", std::string_view(digits, end - digits));
  } else if (u.chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  if (u.expect_continue) out += "Expect: 100-continue\r\n";
  out += "\r\n";
}

void downstream_head(const http::answer_parser& head, const downstream_answer& d,
                     std::string& out) {
  out.clear();
  http::append_status_line(out, d.version, head.result_int(), head.reason());
  hop_filter hops(head);
  for (const auto& f : head)
    if (!hops.drops(f)) append_field(out, f.name_string(), f.value());
  out += k_via;
  if (d.chunked) out += "Transfer-Encoding: chunked\r\n";
  // HTTP/1.1 persists unless told; HTTP/1.0 closes unless told (RFC 9112 §9.3).
  if (d.version >= 11 && !d.keep_alive) out += "Connection: close\r\n";
  if (d.version < 11 && d.keep_alive) out += "Connection: keep-alive\r\n";
  out += "\r\n";
}

wire_piece::wire_piece(std::string_view head, std::string_view body, bool chunked, bool last) {
  static constexpr std::string_view crlf = "\r\n", last_chunk = "0\r\n\r\n";
  buffers_[0] = net::buffer(head.data(), head.size());
  if (!chunked) {
    buffers_[2] = net::buffer(body.data(), body.size());
    return;
  }
  if (!body.empty()) {
    int n = std::snprintf(size_line_, sizeof size_line_, "%zx\r\n", body.size());
    buffers_[1] = net::buffer(size_line_, static_cast<std::size_t>(n));
    buffers_[2] = net::buffer(body.data(), body.size());
    buffers_[3] = net::buffer(crlf.data(), crlf.size());
  }
  if (last) buffers_[4] = net::buffer(last_chunk.data(), last_chunk.size());
}

}  // namespace tokenbroker::app
