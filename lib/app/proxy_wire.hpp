// The bytes the proxy relays around the bodies: the caller's request header rewritten for the
// upstream, the upstream's answer header rewritten for the caller, and chunked framing. Built
// as strings and written with the body in one gather write: copying each field into a Beast
// `fields` object and serializing it again cost more CPU than the proxying itself
// (bench/analysis.md).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/flat_parser.hpp"
#include "http/beast.hpp"
#include "http/list.hpp"

namespace tokenbroker::app {

/// Calls `fn` for each comma-separated element of every `name` field of `f`, in order, while
/// it returns true. A walk comparing the known-field enum: fields::find looks the name up in a
/// case-insensitive tree, and for the two lookups per proxied call that was 3 % of its
/// instructions (callgrind), for a header of a handful of fields.
template <class Fields, class Fn>
void each_element(const Fields& f, http::field name, Fn fn) {
  for (const auto& e : f)
    if (e.name() == name && !http::for_each_element(e.value(), fn)) return;
}

/// Header fields that describe one connection rather than the message (RFC 9110 §7.6.1), and
/// whatever the Connection header itself names. Holds views into `f`, which must outlive it.
/// `f`: Beast fields or a flat_parser, whose fields offer name(), name_string() and value().
class hop_filter {
 public:
  template <class Fields>
  explicit hop_filter(const Fields& f) {
    each_element(f, http::field::connection, [&](std::string_view t) {
      name(t);
      return true;
    });
  }
  template <class Field>
  bool drops(const Field& f) const {
    return drops(f.name(), f.name_string());
  }
  bool drops(http::field name, std::string_view name_string) const;

 private:
  void name(std::string_view token);
  std::vector<std::string_view> named_;
};

/// `Prefer: wait=N` (RFC 7240): seconds, capped; nullopt when absent or malformed (ignored).
std::optional<std::chrono::seconds> preferred_wait(const http::request_reader& h,
                                                   std::chrono::seconds cap);

/// How the upstream request is rewritten.
struct upstream_request {
  std::string_view target;         // origin-form, already cleaned and joined to the api_url
  std::string_view host;           // the api_url's Host
  std::string_view inject_header;  // the credential's header
  std::string_view inject_format;  // its value, where "{token}" (the first) stands for `token`
  std::string_view token;
  bool drop_prefer = false;  // the broker honours `Prefer: wait` itself
  // The body's framing: a declared length, chunked, or neither (no body).
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool expect_continue = false;  // forward the client's Expect: 100-continue
};

/// The request header sent upstream, into `out`: the client's method and fields minus
/// hop-by-hop ones, Host, Content-Length, Expect and every credential the client sent (its own
/// Authorization, X-DPT-Authorization, the credential's header, X-Token-Broker); then Host, the
/// injected header, Via and the framing. HTTP/1.1 and keep-alive, always.
void upstream_head(const http::request_reader& h, const upstream_request& u,
                   std::string& out);

/// How the upstream's answer is relayed.
struct downstream_answer {
  unsigned version = 11;  // the caller's HTTP version
  bool chunked = false;   // re-framed as chunked (the upstream declared no length)
  bool keep_alive = true;
};

/// The answer header sent to the caller, into `out`: the upstream's status and fields minus
/// hop-by-hop ones, then Via, the framing and the caller's connection state.
void downstream_head(const http::answer_parser& head, const downstream_answer& d, std::string& out);

/// One write of a relayed message: its header (or none), a piece of its body framed as the
/// message requires, and for a chunked body that ends here, the last chunk. Pins the memory
/// its buffers point to: keep it in place until the write completes.
class wire_piece {
 public:
  wire_piece(std::string_view head, std::string_view body, bool chunked, bool last);
  wire_piece(const wire_piece&) = delete;
  wire_piece& operator=(const wire_piece&) = delete;

  const std::array<net::const_buffer, 5>& buffers() const noexcept { return buffers_; }

 private:
  char size_line_[24];
  std::array<net::const_buffer, 5> buffers_;
};

}  // namespace tokenbroker::app
