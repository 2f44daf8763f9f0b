#include "http/answer_parser.hpp"

#include <algorithm>
#include <cstring>

namespace tokenbroker::http {

void answer_parser::on_response_impl(int code, beast::string_view reason, int version,
                                     boost::system::error_code& ec) {
  ec = {};
  code_ = code;
  version_ = static_cast<unsigned>(version);
  // Room for a usual header at once (the fields follow the reason); more grows as needed.
  text_.reserve(reason.size() + 384);
  text_.assign(reason);
  reason_size_ = static_cast<std::uint32_t>(reason.size());
}

void answer_parser::on_field_impl(field name, beast::string_view name_string,
                                  beast::string_view value, boost::system::error_code& ec) {
  ec = {};
  if (entries_.empty()) entries_.reserve(16);
  // The header's size is bounded by header_limit, far below 4 GiB: the offsets fit.
  entries_.push_back({name, static_cast<std::uint32_t>(text_.size()),
                      static_cast<std::uint32_t>(name_string.size()),
                      static_cast<std::uint32_t>(value.size())});
  text_.append(name_string);
  text_.append(value);
}

std::size_t answer_parser::on_body_impl(beast::string_view body, boost::system::error_code& ec) {
  if (!body_.data) {
    ec = bhttp::error::need_buffer;
    return 0;
  }
  auto n = std::min(body.size(), body_.size);
  if (n) std::memcpy(body_.data, body.data(), n);
  body_.data += n;
  body_.size -= n;
  if (n == body.size())
    ec = {};
  else
    ec = bhttp::error::need_buffer;
  return n;
}

}  // namespace tokenbroker::http
