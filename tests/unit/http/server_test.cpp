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
#include <nlohmann/json.hpp>

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

// A server on a unix socket in a thread of its own: dispatch answers "dispatch:<target>" (for
// /echo: the method, version, fields and body it was given), the
// quick path "quick:<target>" for targets under /q/ and /r/ (others go on to dispatch) when
// they start with `quick_prefix`.
class test_server {
 public:
  explicit test_server(server_limits limits = {}, std::size_t dispatch_body = 0,
                       std::string quick_prefix = "/")
      : srv_(io_.get_executor(), limits,
             [dispatch_body](request& req, const peer_info&) -> awaitable<response> {
               if (req.target() == "/echo") {  // the request as dispatch got it
                 std::string d = std::string(req.method_string()) + " HTTP/" +
                                 std::to_string(req.version());
                 for (const auto& f : req)
                   d += "|" + std::string(f.name_string()) + "=" + std::string(f.value());
                 co_return json_response(status::ok, d + "|body=" + req.body(), req.version());
               }
               std::string body = dispatch_body ? std::string(dispatch_body, 'x')
                                                : "dispatch:" + std::string(req.target());
               co_return json_response(status::ok, body, req.version());
             }),
        path_((std::filesystem::temp_directory_path() /
               ("tb-server-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n_) +
                ".sock"))
                  .string()) {
    srv_.set_quick([this](const request_view& req, const peer_info&) -> quick_answer {
      if (req.target().starts_with("/q/")) {  // a JSON body, written without a Beast message
        quick_body_ = "quick:" + std::string(req.target()) + "\n";
        return quick_answer::ok_json(quick_body_);
      }
      if (req.target().starts_with("/r/"))  // any other answer
        return json_response(status::accepted, "quick:" + std::string(req.target()),
                             req.version());
      return std::nullopt;
    }, std::move(quick_prefix));
    REQUIRE(srv_.listen_unix(path_, 0600).has_value());
    srv_.start();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~test_server() {
    net::post(io_, [this] { srv_.stop(); });
    thread_.join();  // once every client has closed
  }
  local::socket connect() {
    local::socket s(client_io_);
    s.connect(local::endpoint(path_));
    timeval tv{10, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return s;
  }

 private:
  static inline int n_ = 0;
  net::io_context io_{1};
  server srv_;
  std::string path_;
  std::string quick_body_;
  net::io_context client_io_;
  std::thread thread_;
};

// Reads one whole response (status line through its Content-Length body); the body, or
// "closed" if the server closed first. Never blocks more than 10 s per read.
std::string read_answer(local::socket& s, std::string& pending, std::string* head = nullptr) {
  for (;;) {
    auto end = pending.find("\r\n\r\n");
    if (end != std::string::npos) {
      auto cl = pending.find("Content-Length: ");
      REQUIRE(cl != std::string::npos);
      auto len = std::stoul(pending.substr(cl + 16));
      if (pending.size() >= end + 4 + len) {
        auto body = pending.substr(end + 4, len);
        if (head) *head = pending.substr(0, end + 4);
        pending.erase(0, end + 4 + len);
        return body;
      }
    }
    char buf[65536];
    boost::system::error_code ec;
    auto n = s.read_some(net::buffer(buf), ec);
    if (ec == net::error::eof) return "closed";
    REQUIRE_MESSAGE(!ec, ec.message());
    pending.append(buf, n);
  }
}

// One client connection: ask() writes a request and reads its answer.
struct test_client {
  explicit test_client(local::socket sock) : s(std::move(sock)) {}
  local::socket s;
  std::string pending;
  std::string ask(const std::string& wire) {
    net::write(s, net::buffer(wire));
    return read_answer(s, pending);
  }
};

}  // namespace

TEST_CASE("plain_gets_take_the_quick_path_and_every_other_request_reaches_dispatch") {
  test_server ts;
  test_client tc(ts.connect());
  auto& c = tc.s;
  auto& pending = tc.pending;
  auto ask = [&](const std::string& wire) { return tc.ask(wire); };
  CHECK(ask("GET /q/a HTTP/1.1\r\nHost: t\r\n\r\n") == "quick:/q/a\n");
  CHECK(ask("GET /other HTTP/1.1\r\n\r\n") == "dispatch:/other\n");  // quick declined
  CHECK(ask("GET /q/b HTTP/1.1\r\nContent-Length: 0\r\n\r\n") == "dispatch:/q/b\n");
  CHECK(ask("POST /q/c HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi") == "dispatch:/q/c\n");
  // Two requests in one write: both answered, in order, by their own paths.
  net::write(c, net::buffer(std::string("GET /q/d HTTP/1.1\r\n\r\nGET /e HTTP/1.1\r\n\r\n")));
  CHECK(read_answer(c, pending) == "quick:/q/d\n");
  CHECK(read_answer(c, pending) == "dispatch:/e\n");
  // A header split across writes: if the server reads the first part alone, Beast's parser
  // waits for the rest (whether it does is up to the scheduler; the answer is right either way).
  net::write(c, net::buffer(std::string("GET /q/f HTTP/1.1\r\nHo")));
  net::write(c, net::buffer(std::string("st: t\r\n\r\n")));
  auto split = read_answer(c, pending);
  CHECK_MESSAGE((split == "dispatch:/q/f\n" || split == "quick:/q/f\n"), split);
  // Connection: close on the quick path is honoured.
  CHECK(ask("GET /q/g HTTP/1.1\r\nConnection: close\r\n\r\n") == "quick:/q/g\n");
  CHECK(read_answer(c, pending) == "closed");
}

TEST_CASE("dispatch_gets_the_request_as_sent_and_bodies_over_the_limit_are_refused") {
  server_limits limits;
  limits.body_limit = 16;
  test_server ts(limits);
  test_client c(ts.connect());
  CHECK(c.ask("POST /echo HTTP/1.1\r\nX-A: 1\r\nContent-Length: 5\r\nx-a: 2\r\n\r\nhello") ==
        "POST HTTP/11|X-A=1|x-a=2|Content-Length=5|body=hello\n");
  // An extension method by its name; HTTP/1.0 with keep-alive.
  CHECK(c.ask("BREW /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") ==
        "BREW HTTP/10|Connection=keep-alive|body=\n");
  // A chunked body arrives whole and unframed; the trailer's field joins the header's.
  CHECK(c.ask("PUT /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nT: t\r\n\r\n") ==
        "PUT HTTP/11|Transfer-Encoding=chunked|T=t|body=abcdefg\n");
  // Over the limit: 413, declared or chunked, and the connection closes.
  std::string head;
  test_client declared(ts.connect());
  net::write(declared.s, net::buffer(std::string("POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n")));
  read_answer(declared.s, declared.pending, &head);
  CHECK(head.starts_with("HTTP/1.1 413"));
  CHECK(read_answer(declared.s, declared.pending) == "closed");
  test_client chunked(ts.connect());
  net::write(chunked.s, net::buffer(std::string("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                                "10\r\n0123456789abcdef\r\n1\r\nx\r\n0\r\n\r\n")));
  read_answer(chunked.s, chunked.pending, &head);
  CHECK(head.starts_with("HTTP/1.1 413"));
  CHECK(read_answer(chunked.s, chunked.pending) == "closed");
}

TEST_CASE("only_gets_under_the_quick_prefix_are_offered_to_the_quick_path") {
  test_server ts({}, 0, "/q/");
  test_client c(ts.connect());
  CHECK(c.ask("GET /q/a HTTP/1.1\r\n\r\n") == "quick:/q/a\n");
  CHECK(c.ask("GET /r/b HTTP/1.1\r\n\r\n") == "dispatch:/r/b\n");  // quick would have answered
  CHECK(c.ask("GET /q HTTP/1.1\r\n\r\n") == "dispatch:/q\n");
  CHECK(c.ask("GET /q/c HTTP/1.1\r\n\r\n") == "quick:/q/c\n");
}

TEST_CASE("an_error_answer_is_valid_json_whatever_its_message_holds") {
  // Messages may carry an upstream's text: quotes, newlines, bytes that are not UTF-8.
  auto res = error_response(status::bad_gateway, "upstream", "said \"no\"\nthen \xff\x01 \xc3\xa9");
  auto body = nlohmann::json::parse(res.body());
  CHECK(body["error"] == "upstream");
  CHECK(body["message"] == "said \"no\"\nthen \xef\xbf\xbd\x01 \xc3\xa9");
}

TEST_CASE("a_quick_json_answer_is_framed_as_json_response_frames_it") {
  test_server ts;
  std::string pending, head;
  auto c = ts.connect();
  net::write(c, net::buffer(std::string("GET /q/h HTTP/1.1\r\n\r\n")));
  CHECK(read_answer(c, pending, &head) == "quick:/q/h\n");
  CHECK(head ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
        "Content-Length: 11\r\n\r\n");
  // Any other quick answer goes out as the response it is.
  net::write(c, net::buffer(std::string("GET /r/i HTTP/1.1\r\n\r\n")));
  CHECK(read_answer(c, pending, &head) == "quick:/r/i\n");
  CHECK(head.starts_with("HTTP/1.1 202 Accepted\r\n"));
  // HTTP/1.1 with Connection: close.
  net::write(c, net::buffer(std::string("GET /q/j HTTP/1.1\r\nConnection: close\r\n\r\n")));
  CHECK(read_answer(c, pending, &head) == "quick:/q/j\n");
  CHECK(head.find("Connection: close\r\n") != std::string::npos);
  CHECK(read_answer(c, pending) == "closed");
  // HTTP/1.0: kept open only when asked, and then said so.
  auto c10 = ts.connect();
  pending.clear();
  net::write(c10, net::buffer(std::string("GET /q/k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")));
  CHECK(read_answer(c10, pending, &head) == "quick:/q/k\n");
  CHECK(head.starts_with("HTTP/1.0 200 OK\r\n"));
  CHECK(head.find("Connection: keep-alive\r\n") != std::string::npos);
  net::write(c10, net::buffer(std::string("GET /q/l HTTP/1.0\r\n\r\n")));
  CHECK(read_answer(c10, pending, &head) == "quick:/q/l\n");
  CHECK(head.find("Connection") == std::string::npos);
  CHECK(read_answer(c10, pending) == "closed");
}

TEST_CASE("a_quick_json_answer_has_the_same_header_as_json_response_through_dispatch") {
  // "quick:/q/abcd\n" and "dispatch:/abc\n" are both 14 bytes: the two paths' headers must be
  // byte for byte the same, whatever either of them learns to add.
  test_server ts;
  for (std::string tail : {"HTTP/1.1\r\n\r\n", "HTTP/1.1\r\nConnection: close\r\n\r\n",
                           "HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.0\r\n\r\n"}) {
    CAPTURE(tail);
    std::string heads[2], pending;
    for (int i = 0; i < 2; ++i) {
      auto c = ts.connect();
      net::write(c, net::buffer((i == 0 ? "GET /q/abcd " : "GET /abc ") + tail));
      CHECK(read_answer(c, pending, &heads[i]) == (i == 0 ? "quick:/q/abcd\n" : "dispatch:/abc\n"));
      pending.clear();
    }
    CHECK(heads[0] == heads[1]);
  }
}

TEST_CASE("an_answer_larger_than_the_socket_buffer_reaches_a_slow_reader_whole") {
  // The first write fills the socket buffer; the rest waits for the reader under the deadline.
  constexpr std::size_t size = 8 * 1024 * 1024;
  test_server ts({}, size);
  auto c = ts.connect();
  net::write(c, net::buffer(std::string("GET /big HTTP/1.1\r\n\r\n")));
  std::string pending;
  auto body = read_answer(c, pending);
  CHECK(body.size() == size + 1);
  CHECK(body.find_first_not_of('x') == size);  // the newline json_response adds
}

TEST_CASE("a_keep_alive_connection_is_closed_after_the_idle_timeout_and_not_while_in_use") {
  server_limits limits;
  limits.idle_timeout = std::chrono::milliseconds{1000};
  test_server ts(limits);
  auto c = ts.connect();
  std::string pending;
  // Requests 200 ms apart for 1.6 s: each moves the idle deadline later, so it never passes.
  for (int i = 0; i < 8; ++i) {
    net::write(c, net::buffer(std::string("GET /q/x HTTP/1.1\r\n\r\n")));
    REQUIRE(read_answer(c, pending) == "quick:/q/x\n");
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  // Then silence: the server closes (read_answer waits up to 10 s per read).
  CHECK(read_answer(c, pending) == "closed");
  // A connection that never sends anything is closed too.
  auto idle = ts.connect();
  CHECK(read_answer(idle, pending) == "closed");
}

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
