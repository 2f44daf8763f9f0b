#include "http/server.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "http/router.hpp"

namespace tokenbroker::http {
namespace {

using local = net::local::stream_protocol;

// What the client on `s` receives until the server closes or answers: "" for a closed
// connection, else the start of the answer. Never blocks more than 10 s.
std::string first_bytes(local::socket& s) {
  timeval tv{10, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[64];
  boost::system::error_code ec;
  auto n = s.read_some(net::buffer(buf), ec);
  return ec ? std::string{} : std::string(buf, n);
}

}  // namespace

TEST_CASE("connections_beyond_max_connections_are_closed_even_when_accepted_in_one_batch") {
  // Five clients are queued before the server first runs, so one turn of its io_context takes
  // them all; only max_connections of them may be served.
  net::io_context io{1};
  server_limits limits;
  limits.max_connections = 2;
  server srv(io.get_executor(), limits, [](request& req, const peer_info&) -> awaitable<response> {
    co_return json_response(status::ok, "{}", req.version());
  });
  auto path = (std::filesystem::temp_directory_path() /
               ("tb-server-test-" + std::to_string(::getpid()) + ".sock"))
                  .string();
  REQUIRE(srv.listen_unix(path, 0600).has_value());
  srv.start();

  net::io_context client_io;
  std::vector<local::socket> clients;
  const std::string get = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
  for (int i = 0; i < 5; ++i) {
    auto& c = clients.emplace_back(client_io);
    c.connect(local::endpoint(path));
    net::write(c, net::buffer(get));
  }
  std::thread server_thread([&] { io.run(); });

  std::vector<std::string> answers;
  for (auto& c : clients) answers.push_back(first_bytes(c));
  net::post(io, [&] { srv.stop(); });
  clients.clear();  // the served two close, so the server's sessions end and io.run returns
  server_thread.join();

  int served = 0, closed = 0;
  for (const auto& a : answers) {
    if (a.starts_with("HTTP/1.1 200")) ++served;
    else if (a.empty()) ++closed;
  }
  CHECK(served == 2);
  CHECK(closed == 3);
}

}  // namespace tokenbroker::http
