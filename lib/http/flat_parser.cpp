#include "http/flat_parser.hpp"

#include <algorithm>
#include <cstring>

namespace tokenbroker::http {

template <bool isRequest>
void flat_parser<isRequest>::on_request_impl(verb method, beast::string_view method_string,
                                             beast::string_view target, int version,
                                             boost::system::error_code& ec) {
  ec = {};
  method_ = method;
  version_ = static_cast<unsigned>(version);
  text_.clear();
  append(method_string);
  append(target);
  method_size_ = static_cast<std::uint32_t>(method_string.size());
  line_size_ = static_cast<std::uint32_t>(text_.size());
}

template <bool isRequest>
void flat_parser<isRequest>::on_response_impl(int code, beast::string_view reason, int version,
                                              boost::system::error_code& ec) {
  ec = {};
  code_ = code;
  version_ = static_cast<unsigned>(version);
  text_.clear();
  append(reason);
  line_size_ = static_cast<std::uint32_t>(text_.size());
}

template <bool isRequest>
void flat_parser<isRequest>::on_field_impl(field name, beast::string_view name_string,
                                           beast::string_view value,
                                           boost::system::error_code& ec) {
  ec = {};
  // The header's size is bounded by header_limit, far below 4 GiB: the offsets fit.
  entries_.push_back({name, static_cast<std::uint32_t>(text_.size()),
                      static_cast<std::uint32_t>(name_string.size()),
                      static_cast<std::uint32_t>(value.size())});
  append(name_string);
  append(value);
}

template <bool isRequest>
std::size_t flat_parser<isRequest>::on_body_impl(beast::string_view body,
                                                 boost::system::error_code& ec) {
  ec = {};
  if (sink_) {  // the body limit was checked by basic_parser before the bytes came here
    sink_->append(body.data(), body.size());
    return body.size();
  }
  if (!body_.data) {
    ec = bhttp::error::need_buffer;
    return 0;
  }
  auto n = std::min(body.size(), body_.size);
  if (n) std::memcpy(body_.data, body.data(), n);
  body_.data += n;
  body_.size -= n;
  if (n != body.size()) ec = bhttp::error::need_buffer;
  return n;
}

template class flat_parser<true>;
template class flat_parser<false>;

}  // namespace tokenbroker::http
