// Parsers for HTTP messages whose header is read once and passed on: the proxy's upstream
// answers (answer_parser) and every request the local server reads (request_reader). Beast's
// basic_parser does all the reading: syntax checks, limits and framing (Content-Length,
// chunked, keep-alive), exactly as for Beast's own request_parser and response_parser. Only
// where the result goes differs. Beast's parsers build a `fields` object, a tree of separately
// allocated fields, which the proxy walked once to copy the fields on; building it, walking it
// and freeing it was about a tenth of a proxied call's instructions (bench/analysis.md). Here
// the header is kept as one string with an index of its fields, in order. Body bytes go
// straight into the caller's buffer, as with Beast's buffer_body, or (body_to) onto the end of
// a string, as with string_body.
#pragma once

#include <boost/container/small_vector.hpp>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "http/beast.hpp"

namespace tokenbroker::http {

template <bool isRequest>
class flat_parser final : public bhttp::basic_parser<isRequest> {
  struct entry {
    field name;
    std::uint32_t at;  // the name's offset in text_; the value follows it
    std::uint32_t name_size;
    std::uint32_t value_size;
  };

 public:
  /// One field of the header, with the members of Beast's fields::value_type.
  class field_view {
   public:
    field name() const noexcept { return name_; }
    std::string_view name_string() const noexcept { return name_string_; }
    std::string_view value() const noexcept { return value_; }

   private:
    friend class flat_parser;
    field_view(field n, std::string_view s, std::string_view v)
        : name_(n), name_string_(s), value_(v) {}
    field name_;
    std::string_view name_string_;
    std::string_view value_;
  };

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = field_view;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = field_view;

    const_iterator() = default;
    field_view operator*() const noexcept { return owner_->view(*at_); }
    const_iterator& operator++() noexcept {
      ++at_;
      return *this;
    }
    const_iterator operator++(int) noexcept {
      auto was = *this;
      ++at_;
      return was;
    }
    bool operator==(const const_iterator& o) const noexcept { return at_ == o.at_; }

   private:
    friend class flat_parser;
    const_iterator(const flat_parser* owner, const entry* at) : owner_(owner), at_(at) {}
    const flat_parser* owner_ = nullptr;
    const entry* at_ = nullptr;
  };

  /// Where body bytes go, as with Beast's buffer_body: `data` advances and `size` shrinks as
  /// bytes are stored, and a full (or unset) buffer stops the parser with need_buffer.
  struct body_buffer {
    char* data = nullptr;
    std::size_t size = 0;
  };

  flat_parser() {}  // not `= default`: GCC 12 then sees no default constructor in std::optional
  flat_parser(flat_parser&&) = delete;  // the index's views point into text_

  // An answer's status line.
  int result_int() const noexcept
    requires(!isRequest)
  {
    return code_;
  }
  status result() const noexcept
    requires(!isRequest)
  {
    return bhttp::int_to_status(static_cast<unsigned>(code_));
  }
  /// As received, or the status's standard phrase when none was (as Beast's header gives it).
  std::string_view reason() const noexcept
    requires(!isRequest)
  {
    if (line_size_ == 0) return bhttp::obsolete_reason(bhttp::int_to_status(unsigned(code_)));
    return text().substr(0, line_size_);
  }

  // A request's line.
  verb method() const noexcept
    requires isRequest
  {
    return method_;
  }
  std::string_view method_string() const noexcept
    requires isRequest
  {
    return text().substr(0, method_size_);
  }
  std::string_view target() const noexcept
    requires isRequest
  {
    return text().substr(method_size_, line_size_ - method_size_);
  }

  unsigned version() const noexcept { return version_; }

  /// The header's fields in the order received, then a chunked body's trailer fields as they
  /// arrive (as Beast's parser adds them to its header); `for (const auto& f : parser)`. A
  /// field's views hold until the parser next takes bytes.
  const_iterator begin() const noexcept { return {this, entries_.data()}; }
  const_iterator end() const noexcept { return {this, entries_.data() + entries_.size()}; }
  std::size_t field_count() const noexcept { return entries_.size(); }
  /// The first value of the field `name`, or an empty view (as Beast's fields give it).
  std::string_view operator[](field name) const noexcept {
    for (const auto& e : entries_)
      if (e.name == name) return view(e).value();
    return {};
  }

  body_buffer& body() noexcept { return body_; }
  /// From now on body bytes are appended to `*s` instead (the body limit still applies).
  void body_to(std::string* s) noexcept { sink_ = s; }

 private:
  std::string_view text() const noexcept { return {text_.data(), text_.size()}; }
  field_view view(const entry& e) const noexcept {
    auto t = text();
    return {e.name, t.substr(e.at, e.name_size), t.substr(e.at + e.name_size, e.value_size)};
  }
  void append(std::string_view s) { text_.insert(text_.end(), s.begin(), s.end()); }

  // Beast's hooks take boost::core::string_view, which converts to std::string_view.
  void on_request_impl(verb method, beast::string_view method_string, beast::string_view target,
                       int version, boost::system::error_code& ec) override;
  void on_response_impl(int code, beast::string_view reason, int version,
                        boost::system::error_code& ec) override;
  void on_field_impl(field name, beast::string_view name_string, beast::string_view value,
                     boost::system::error_code& ec) override;
  void on_header_impl(boost::system::error_code& ec) override { ec = {}; }
  void on_body_init_impl(const boost::optional<std::uint64_t>&,
                         boost::system::error_code& ec) override {
    ec = {};
  }
  std::size_t on_body_impl(beast::string_view body, boost::system::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, beast::string_view,
                            boost::system::error_code& ec) override {
    ec = {};
  }
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 boost::system::error_code& ec) override {
    return on_body_impl(body, ec);
  }
  void on_finish_impl(boost::system::error_code& ec) override { ec = {}; }


  int code_ = 0;
  verb method_ = verb::unknown;
  unsigned version_ = 11;
  std::uint32_t method_size_ = 0;  // a request's method string starts text_
  std::uint32_t line_size_ = 0;    // the reason, or the method and target: text_'s first part
  // The line's part, then each field's name and value; and their index. A usual header fits
  // in the parser itself (it lives in a coroutine's frame): no allocation of its own.
  boost::container::small_vector<char, 768> text_;
  boost::container::small_vector<entry, 16> entries_;
  body_buffer body_;
  std::string* sink_ = nullptr;
};

/// The proxy's reader of upstream answers.
using answer_parser = flat_parser<false>;
/// The local server's reader of requests.
using request_reader = flat_parser<true>;

extern template class flat_parser<true>;
extern template class flat_parser<false>;

}  // namespace tokenbroker::http
