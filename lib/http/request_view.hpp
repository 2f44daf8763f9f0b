// What the local server's quick path and the API's guards read of a request: its line and header
// fields, as views into a Beast header, a request_reader or the connection's read buffer.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "http/beast.hpp"
#include "http/flat_parser.hpp"

namespace tokenbroker::http {

struct field_view {
  std::string_view name, value;
};

class request_view {
 public:
  /// Over a header Beast parsed (it must outlive the view).
  explicit request_view(const bhttp::request_header<>& h);
  /// Over a request_reader's header (it must outlive the view).
  explicit request_view(const request_reader& r);
  /// Over fields parsed elsewhere (parse_simple_request).
  request_view(verb method, std::string_view target, unsigned version,
               std::span<const field_view> fields);

  verb method() const noexcept { return method_; }
  std::string_view target() const noexcept { return target_; }
  unsigned version() const noexcept { return version_; }
  /// The first value of the field `name` (compared case-insensitively), or nullopt.
  std::optional<std::string_view> field(std::string_view name) const;

 private:
  verb method_;
  std::string_view target_;
  unsigned version_;
  const bhttp::fields* beast_ = nullptr;
  const request_reader* reader_ = nullptr;
  std::span<const field_view> fields_;
};

/// A GET without a body, its header complete at the start of a buffer.
struct simple_request {
  static constexpr std::size_t max_fields = 24;

  std::string_view target;
  unsigned version = 11;
  bool keep_alive = true;
  std::size_t header_bytes = 0;  // up to and including the blank line
  std::array<field_view, max_fields> fields{};
  std::size_t field_count = 0;

  request_view view() const {
    return request_view(verb::get, target, version, std::span(fields.data(), field_count));
  }
};

/// Parses `data` (at most `header_limit` bytes of it) as the plain request most local clients
/// send: `GET /origin-form HTTP/1.1`, CRLF line ends, printable field values, no body. Anything
/// else (another method, a body or its framing fields, Upgrade or Expect, obs-fold, a bare LF,
/// a control character, a repeated Connection, too many fields, an incomplete header) gives
/// nullopt and is left to Beast's parser, which then answers exactly as it always has: this
/// accepts a strict subset of what Beast accepts, and reads it the same way.
std::optional<simple_request> parse_simple_request(std::string_view data, std::size_t header_limit);

}  // namespace tokenbroker::http
