#include "oauth2/browser_login.hpp"

#include <doctest/doctest.h>

#include "core/spawn.hpp"
#include "http/form.hpp"
#include "oauth2/requests.hpp"

using namespace tokenbroker;
using namespace tokenbroker::oauth2;
using namespace std::chrono_literals;
namespace bhttp = http::bhttp;

namespace {

browser_login_options options(std::chrono::milliseconds timeout = 30s) {
  browser_login_options o;
  o.name = "test";
  o.authorization_endpoint = http::url::parse("https://idp.example.com/authorize").value();
  o.client_id = "app";
  o.scope = "openid offline_access";
  o.issuer = "https://idp.example.com";
  o.timeout = timeout;
  return o;
}

std::uint16_t port_of(const std::string& redirect_uri) {
  return http::url::parse(redirect_uri).value().port;
}

// What the browser sees: status and body, or status 0 when the connection failed.
struct answer {
  unsigned status = 0;
  std::string body;
};

awaitable<answer> browse(std::uint16_t port, std::string target) {
  auto ex = co_await net::this_coro::executor;
  http::beast::tcp_stream s(ex);
  s.expires_after(10s);
  auto [cec] = co_await s.async_connect(
      http::tcp::endpoint(net::ip::make_address("127.0.0.1"), port), use_tuple);
  if (cec) co_return answer{};
  http::request req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1");
  auto [wec, wn] = co_await bhttp::async_write(s, req, use_tuple);
  http::beast::flat_buffer buf;
  http::response res;
  auto [rec, rn] = co_await bhttp::async_read(s, buf, res, use_tuple);
  if (wec || rec) co_return answer{};
  co_return answer{res.result_int(), res.body()};
}

std::string query_param(const std::string& url, const std::string& name) {
  auto q = http::form::parse(url.substr(url.find('?') + 1));
  return q && q->get(name) ? *q->get(name) : std::string{};
}

template <class F>
void run(F&& body) {
  net::io_context io;
  bool done = false;
  net::co_spawn(io, [&]() -> awaitable<void> {
    co_await body();
    done = true;
  }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
  io.run_for(60s);
  REQUIRE(done);
}

}  // namespace

TEST_CASE("the_first_valid_callback_delivers_the_code_and_the_verifier_behind_the_challenge") {
  run([]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    auto opened = browser_login::open(ex, options());
    REQUIRE(opened.has_value());
    auto login = *opened;
    const auto& url = login->authorization_url();
    CHECK(url.starts_with("https://idp.example.com/authorize?response_type=code&client_id=app"));
    CHECK(query_param(url, "redirect_uri") == login->redirect_uri());
    CHECK(login->redirect_uri().starts_with("http://127.0.0.1:"));
    CHECK(query_param(url, "code_challenge_method") == "S256");
    auto state = query_param(url, "state");
    auto port = port_of(login->redirect_uri());

    // A forged or stale request (wrong state) is refused and the login keeps waiting.
    // Targets are named: g++ 12 mishandles non-trivial temporaries inside co_await.
    std::string forged_target = "/callback?code=evil&state=wrong", favicon = "/favicon.ico";
    auto forged = co_await browse(port, forged_target);
    CHECK(forged.status == 400);
    auto other = co_await browse(port, favicon);
    CHECK(other.status == 404);
    CHECK_FALSE(login->done());

    // The real callback: its page waits for the exchange's outcome.
    answer page;
    bool browsed = false;
    spawn_logged(ex, "browser", [&, port, state]() -> awaitable<void> {
      std::string target =
          "/callback?code=the-code&state=" + state + "&iss=https%3A%2F%2Fidp.example.com";
      page = co_await browse(port, target);
      browsed = true;
    });
    auto input = co_await login->wait_for_callback();
    REQUIRE(input.has_value());
    CHECK(input->code.reveal() == "the-code");
    CHECK(input->redirect_uri == login->redirect_uri());
    CHECK(code_challenge_s256(input->code_verifier) == query_param(url, "code_challenge"));

    // Exactly one callback: the listener is closed now.
    std::string again_target = "/callback?code=the-code&state=" + state;
    auto again = co_await browse(port, again_target);
    CHECK(again.status == 0);

    login->finish(result<void>{});
    auto until = steady_clock::now() + 5s;
    bool ended = co_await login->wait_outcome(until);
    CHECK(ended);
    const auto& outcome = login->outcome();
    REQUIRE(outcome.has_value());
    CHECK(outcome->has_value());
    net::steady_timer t(ex);
    for (int i = 0; i < 500 && !browsed; ++i) {
      t.expires_after(10ms);
      co_await t.async_wait(use_tuple);
    }
    REQUIRE(browsed);
    CHECK(page.status == 200);
    CHECK(page.body.find("Logged in") != std::string::npos);
    CHECK(page.body.find("the-code") == std::string::npos);
  });
}

TEST_CASE("a_denied_authorization_ends_the_login_with_the_providers_words") {
  run([]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    auto login = browser_login::open(ex, options()).value();
    auto state = query_param(login->authorization_url(), "state");
    std::string target = "/callback?error=access_denied&error_description=no%3Cb%3E&state=" + state;
    auto page = co_await browse(port_of(login->redirect_uri()), target);
    CHECK(page.status == 200);
    CHECK(page.body.find("access_denied") != std::string::npos);
    CHECK(page.body.find("<b>") == std::string::npos);  // escaped
    auto input = co_await login->wait_for_callback();
    REQUIRE_FALSE(input.has_value());
    CHECK(input.error().code == errc::refused);
    auto until = steady_clock::now() + 1s;
    bool ended = co_await login->wait_outcome(until);
    CHECK(ended);
    const auto& outcome = login->outcome();
    REQUIRE(outcome.has_value());
    REQUIRE_FALSE(outcome->has_value());
    CHECK(outcome->error().message.find("access_denied: no<b>") != std::string::npos);
  });
}

TEST_CASE("a_callback_from_another_issuer_is_refused") {
  run([]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    auto login = browser_login::open(ex, options()).value();
    auto state = query_param(login->authorization_url(), "state");
    std::string target = "/callback?code=c&state=" + state + "&iss=https%3A%2F%2Fevil.example.com";
    co_await browse(port_of(login->redirect_uri()), target);
    auto input = co_await login->wait_for_callback();
    REQUIRE_FALSE(input.has_value());
    CHECK(input.error().code == errc::refused);
  });
}

TEST_CASE("a_login_nobody_completes_times_out_and_closes_its_listener") {
  run([]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    auto login = browser_login::open(ex, options(300ms)).value();
    auto port = port_of(login->redirect_uri());
    auto input = co_await login->wait_for_callback();
    REQUIRE_FALSE(input.has_value());
    CHECK(input.error().code == errc::timeout);
    CHECK(login->done());
    std::string target = "/callback";
    auto late = co_await browse(port, target);
    CHECK(late.status == 0);
  });
}

TEST_CASE("a_cancelled_login_tells_its_waiters_why") {
  run([]() -> awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    auto login = browser_login::open(ex, options()).value();
    login->cancel("replaced by a newer login");
    auto until = steady_clock::now() + 1s;
    bool ended = co_await login->wait_outcome(until);
    CHECK(ended);
    const auto& outcome = login->outcome();
    REQUIRE(outcome.has_value());
    REQUIRE_FALSE(outcome->has_value());
    CHECK(outcome->error().message == "replaced by a newer login");
  });
}

TEST_CASE("the_listener_binds_loopback_addresses_only") {
  net::io_context io;
  auto o = options();
  o.redirect.host = "0.0.0.0";
  auto r = browser_login::open(io.get_executor(), o);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == errc::invalid_argument);
}
