#include "app/proxy_body.hpp"

#include "http/read.hpp"

namespace tokenbroker::app {

namespace bhttp = http::bhttp;

result<std::size_t> body_read(const boost::system::error_code& ec, std::size_t size,
                              std::size_t left, std::string_view what) {
  if (ec && ec != bhttp::error::need_buffer) return http::io_error(ec, what);
  return size - left;  // need_buffer: the caller's buffer is full, which is no error
}

bool take_client(http::streamed_request& sr, char* data, std::size_t size,
                 result<std::size_t>& n) {
  auto& body = sr.parser.body();
  body.data = data;
  body.size = size;
  boost::system::error_code ec;
  if (!http::put_buffered(sr.buffer, sr.parser, ec)) return false;
  n = body_read(ec, size, body.size, "reading the request body");
  return true;
}

bool take_upstream(http::connection& c, http::answer_parser& p, char* data, std::size_t size,
                   result<std::size_t>& n) {
  auto& body = p.body();
  body.data = data;
  body.size = size;
  boost::system::error_code ec;
  if (!c.take_buffered(p, ec)) return false;
  n = body_read(ec, size, body.size, "reading the upstream body");
  return true;
}

awaitable<result<std::size_t>> read_upstream(http::connection& c, http::answer_parser& p,
                                             char* data, std::size_t size,
                                             std::chrono::milliseconds timeout) {
  result<std::size_t> n{std::size_t{0}};
  if (take_upstream(c, p, data, size, n)) co_return n;
  c.expires_at(steady_clock::now() + timeout);
  auto ec = co_await c.read_some(p);
  co_return body_read(ec, size, p.body().size, "reading the upstream body");
}

}  // namespace tokenbroker::app
