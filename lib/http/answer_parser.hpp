// A parser for HTTP answers that are relayed on (the proxy's upstream answers). Beast's
// basic_parser does all the reading: syntax checks, limits and framing (Content-Length,
// chunked, keep-alive), exactly as for Beast's own response_parser. Only where the result
// goes differs. Beast's parser builds a `fields` object, a tree of separately allocated fields,
// which the proxy walked once to copy the fields on; building it, walking it and freeing it
// was about a tenth of a proxied call's instructions (bench/analysis.md). Here the header is
// kept as one string with an index of its fields, in order, and body bytes go straight into
// the caller's buffer, as with Beast's buffer_body.
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "http/beast.hpp"

namespace tokenbroker::http {

class answer_parser final : public bhttp::basic_parser<false> {
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
    friend class answer_parser;
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
    friend class answer_parser;
    const_iterator(const answer_parser* owner, std::vector<entry>::const_iterator at)
        : owner_(owner), at_(at) {}
    const answer_parser* owner_ = nullptr;
    std::vector<entry>::const_iterator at_;
  };

  /// Where body bytes go, as with Beast's buffer_body: `data` advances and `size` shrinks as
  /// bytes are stored, and a full (or unset) buffer stops the parser with need_buffer.
  struct body_buffer {
    char* data = nullptr;
    std::size_t size = 0;
  };

  answer_parser() {}  // not `= default`: GCC 12 then sees no default constructor in std::optional
  answer_parser(answer_parser&&) = delete;  // the index's views point into text_

  int result_int() const noexcept { return code_; }
  status result() const noexcept { return bhttp::int_to_status(static_cast<unsigned>(code_)); }
  /// As received, or the status's standard phrase when none was (as Beast's header gives it).
  std::string_view reason() const noexcept {
    if (reason_size_ == 0) return bhttp::obsolete_reason(result());
    return std::string_view(text_).substr(0, reason_size_);
  }
  unsigned version() const noexcept { return version_; }

  /// The header's fields in the order received, then a chunked body's trailer fields as they
  /// arrive (as Beast's parser adds them to its header); `for (const auto& f : parser)`. A
  /// field's views hold until the parser next takes bytes.
  const_iterator begin() const noexcept { return {this, entries_.begin()}; }
  const_iterator end() const noexcept { return {this, entries_.end()}; }
  std::size_t field_count() const noexcept { return entries_.size(); }

  body_buffer& body() noexcept { return body_; }

 private:
  field_view view(const entry& e) const noexcept {
    std::string_view t(text_);
    return {e.name, t.substr(e.at, e.name_size), t.substr(e.at + e.name_size, e.value_size)};
  }

  // Beast's hooks take boost::core::string_view, which converts to std::string_view.
  void on_request_impl(verb, beast::string_view, beast::string_view, int,
                       boost::system::error_code&) override {}
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
  unsigned version_ = 11;
  std::uint32_t reason_size_ = 0;
  std::string text_;  // the reason, then each field's name and value
  std::vector<entry> entries_;
  body_buffer body_;
};

}  // namespace tokenbroker::http
