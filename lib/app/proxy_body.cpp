#include "app/proxy_body.hpp"

namespace tokenbroker::app {

namespace bhttp = http::bhttp;

bool take_client(http::streamed_request& sr, char* data, std::size_t size,
                 result<std::size_t>& n) {
  auto& body = sr.parser.get().body();
  body.data = data;
  body.size = size;
  boost::system::error_code ec;
  if (!http::put_buffered(sr.buffer, sr.parser, ec)) return false;
  if (ec && ec != bhttp::error::need_buffer)
    n = http::io_error(ec, "reading the request body");
  else
    n = size - body.size;
  return true;
}

bool take_upstream(http::connection& c, http::answer_parser& p, char* data, std::size_t size,
                   result<std::size_t>& n) {
  auto& body = p.body();
  body.data = data;
  body.size = size;
  boost::system::error_code ec;
  if (!c.take_buffered(p, ec)) return false;
  if (ec && ec != bhttp::error::need_buffer)
    n = http::io_error(ec, "reading the upstream body");
  else
    n = size - body.size;
  return true;
}

awaitable<result<std::size_t>> read_upstream(http::connection& c, http::answer_parser& p,
                                             char* data, std::size_t size,
                                             std::chrono::milliseconds timeout) {
  result<std::size_t> n{std::size_t{0}};
  if (take_upstream(c, p, data, size, n)) co_return n;
  c.expires_at(steady_clock::now() + timeout);
  auto ec = co_await c.read_some(p);
  if (ec && ec != bhttp::error::need_buffer)
    co_return http::io_error(ec, "reading the upstream body");
  co_return size - p.body().size;
}

}  // namespace tokenbroker::app
