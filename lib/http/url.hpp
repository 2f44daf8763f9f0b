// Absolute http(s)/ws(s) URLs as used in configuration and by the outbound client.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace tokenbroker::http {

struct url {
  std::string scheme;  // "http", "https", "ws" or "wss" (lower case)
  std::string host;    // without brackets for IPv6 literals
  std::uint16_t port = 0;
  std::string path = "/";  // always starts with '/'
  std::string query;       // without the '?'

  /// Parses an absolute URL; rejects user-info, fragments, unknown schemes and bad ports.
  static result<url> parse(std::string_view text);

  bool tls() const noexcept { return scheme == "https" || scheme == "wss"; }
  /// True for 127.0.0.0/8, ::1 and "localhost": plain HTTP and skipped verification are allowed.
  bool loopback() const noexcept;
  /// "host:port" as for a Host header (brackets around IPv6 literals, port omitted if default).
  std::string host_header() const;
  /// "scheme://host:port" — the connection-pool key.
  std::string origin() const;
  /// Appends origin() to `out`.
  void append_origin(std::string& out) const;
  /// path + ("?" + query if any): the request-target.
  std::string target() const;
  /// This URL with `suffix` appended to its path ("/base" + "/x" → "/base/x").
  url join(std::string_view suffix) const;
};

}  // namespace tokenbroker::http
