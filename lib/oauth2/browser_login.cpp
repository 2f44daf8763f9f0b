#include "oauth2/browser_login.hpp"

#include "core/log.hpp"
#include "core/spawn.hpp"
#include "http/form.hpp"
#include "oauth2/parse.hpp"
#include "oauth2/requests.hpp"

namespace tokenbroker::oauth2 {
namespace {

namespace beast = http::beast;
namespace bhttp = http::bhttp;

// A browser or a stray local client gets this long per request, and this many at once.
constexpr auto session_timeout = std::chrono::seconds{10};
constexpr std::size_t max_sessions = 8;
// How long the browser's callback page waits for the code exchange before answering anyway.
constexpr auto exchange_wait = std::chrono::seconds{60};

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// The page the browser shows. No scripts, no links, no referrer: the URL holds the code.
http::response page(http::status code, std::string_view title, std::string_view text) {
  http::response res{code, 11};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy", "default-src 'none'");
  res.set("X-Frame-Options", "DENY");
  res.keep_alive(false);
  res.body() = "<!doctype html><html><head><meta charset=\"utf-8\"><title>tokenbroker: " +
               html_escape(title) + "</title></head><body><h1>" + html_escape(title) +
               "</h1><p>" + html_escape(text) + "</p></body></html>\n";
  res.prepare_payload();
  return res;
}

bool same_issuer(std::string_view a, std::string_view b) {
  while (!a.empty() && a.back() == '/') a.remove_suffix(1);
  while (!b.empty() && b.back() == '/') b.remove_suffix(1);
  return a == b;
}

std::string duration_text(std::chrono::milliseconds d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return s % 60 == 0 ? std::to_string(s / 60) + " min" : std::to_string(s) + " s";
}

}  // namespace

browser_login::browser_login(private_tag, net::any_io_executor ex, browser_login_options options)
    : ex_(ex), options_(std::move(options)), acceptor_(ex), deadline_timer_(ex) {}

browser_login::~browser_login() = default;

result<std::shared_ptr<browser_login>> browser_login::open(net::any_io_executor ex,
                                                            browser_login_options options) {
  auto self = std::make_shared<browser_login>(private_tag{}, ex, std::move(options));
  auto& o = self->options_;
  auto bind_host = o.redirect.host == "localhost" ? std::string("127.0.0.1") : o.redirect.host;
  boost::system::error_code ec;
  auto addr = net::ip::make_address(bind_host, ec);
  if (ec || !addr.is_loopback())
    return make_error(errc::invalid_argument, "the redirect listener binds loopback addresses only");
  http::tcp::endpoint ep{addr, o.redirect.port};
  auto& a = self->acceptor_;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(16, ec);
  if (ec)
    return make_error(errc::io, "cannot listen for the browser's redirect on " + bind_host + ":" +
                                    std::to_string(o.redirect.port) + ": " + ec.message());
  auto port = a.local_endpoint().port();
  auto host = o.redirect.host.find(':') != std::string::npos ? "[" + o.redirect.host + "]"
                                                              : o.redirect.host;
  self->redirect_uri_ = "http://" + host + ":" + std::to_string(port) + o.redirect.path;
  self->state_ = secret{make_state()};
  self->verifier_ = make_code_verifier();
  self->authorization_url_ =
      oauth2::authorization_url(o.authorization_endpoint, o.client_id, self->redirect_uri_, o.scope,
                        self->state_.reveal(), code_challenge_s256(self->verifier_));
  self->deadline_ = steady_clock::now() + o.timeout;
  self->expires_at_ = std::chrono::ceil<std::chrono::seconds>(system_clock::now() + o.timeout);
  self->deadline_timer_.expires_at(self->deadline_);
  spawn_logged(ex, "redirect listener " + o.name, run_accept(self));
  spawn_logged(ex, "login deadline " + o.name, run_deadline(self));
  log::info("credential {}: browser login started; waiting for the redirect on {}:{} for {}",
            o.name, bind_host, port, duration_text(o.timeout));
  return self;
}

void browser_login::close_listener() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

void browser_login::deliver(result<broker::login_input> r) {
  if (callback_) return;
  callback_ = std::move(r);
  close_listener();  // exactly one callback is accepted
  if (!callback_->has_value()) finish(callback_->error());
  changes_.notify();
}

void browser_login::finish(result<void> outcome) {
  if (outcome_) return;
  outcome_ = std::move(outcome);
  if (!callback_) callback_ = outcome_->has_value() ? make_error(errc::unavailable, "login ended")
                                                     : result<broker::login_input>(outcome_->error());
  close_listener();
  deadline_timer_.cancel();
  if (outcome_->has_value()) log::info("credential {}: browser login succeeded", options_.name);
  else log::warn("credential {}: browser login failed: {}", options_.name,
                 outcome_->error().describe());
  changes_.notify();
}

void browser_login::cancel(const std::string& why) {
  if (!outcome_) deliver(make_error(errc::unavailable, why));
}

awaitable<result<broker::login_input>> browser_login::wait_for_callback() {
  while (!callback_) co_await changes_.wait(steady_clock::time_point::max());
  co_return *callback_;
}

awaitable<bool> browser_login::wait_outcome(steady_clock::time_point deadline) {
  while (!outcome_ && steady_clock::now() < deadline) {
    bool woken = co_await changes_.wait(deadline);
    if (!woken) break;
  }
  co_return outcome_.has_value();
}

awaitable<void> browser_login::run_deadline(std::shared_ptr<browser_login> self) {
  auto [ec] = co_await self->deadline_timer_.async_wait(use_tuple);
  if (ec) co_return;  // finished before its deadline
  self->deliver(make_error(errc::timeout, "no answer from the browser within " +
                                              duration_text(self->options_.timeout)));
}

awaitable<void> browser_login::run_accept(std::shared_ptr<browser_login> self) {
  for (;;) {
    auto [ec, sock] = co_await self->acceptor_.async_accept(use_tuple);
    if (ec) {
      if (!self->acceptor_.is_open() || ec == net::error::operation_aborted) co_return;
      continue;
    }
    if (self->sessions_ >= max_sessions) continue;  // closes `sock`
    spawn_logged(self->ex_, "redirect session", run_session(self, std::move(sock)));
  }
}

awaitable<void> browser_login::run_session(std::shared_ptr<browser_login> self,
                                           http::tcp::socket s) {
  ++self->sessions_;
  struct guard {
    std::size_t& n;
    ~guard() { --n; }
  } g{self->sessions_};
  beast::tcp_stream stream(std::move(s));
  beast::flat_buffer buffer;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(8 * 1024);
  parser.body_limit(4 * 1024);
  stream.expires_after(session_timeout);
  auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
  if (ec) co_return;
  bool delivered = false;
  auto res = self->handle_request(parser.get(), delivered);
  if (delivered) {
    // Answer the browser with the outcome of the exchange, not just "received".
    auto until = steady_clock::now() + exchange_wait;
    co_await self->wait_outcome(until);
    const auto& outcome = self->outcome();
    if (!outcome)
      res = page(http::status::ok, "Authorization received",
                 "tokenbroker is still completing the login; tokenbrokerctl shows the outcome.");
    else if (outcome->has_value())
      res = page(http::status::ok, "Logged in",
                 "tokenbroker holds the new grant for credential " + self->options_.name +
                     ". You can close this window.");
    else
      res = page(http::status::bad_gateway, "Login failed", outcome->error().describe());
  }
  stream.expires_after(session_timeout);
  co_await bhttp::async_write(stream, res, use_tuple);  // a browser gone away is no concern
  boost::system::error_code ignored;
  stream.socket().shutdown(net::socket_base::shutdown_send, ignored);
}

http::response browser_login::handle_request(const http::request& req, bool& delivered) {
  std::string_view target = req.target();
  auto qpos = target.find('?');
  auto path = target.substr(0, qpos);
  auto query = qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);
  if (req.method() != http::verb::get || path != options_.redirect.path)
    return page(http::status::not_found, "Not found", "This is tokenbroker's login callback.");
  auto q = http::form::parse(query);
  auto state = q ? q->get("state") : std::nullopt;
  // Constant-time comparison; a wrong or missing state leaves the login waiting (it may be a
  // forged request from another local program, and the real callback still comes).
  if (!state || !(secret{*state} == state_)) {
    log::warn("credential {}: a request to the redirect listener carried a wrong state; ignored",
              options_.name);
    return page(http::status::bad_request, "Unknown login",
                 "This callback does not belong to the login tokenbroker is waiting for.");
  }
  if (callback_)
    return page(http::status::conflict, "Already used",
                 "This login has already received its callback.");
  // RFC 9207: a callback naming another issuer is a mix-up attack or a misconfiguration.
  if (auto iss = q->get("iss");
      iss && !options_.issuer.empty() && !same_issuer(*iss, options_.issuer)) {
    deliver(make_error(errc::refused, "the callback came from issuer \"" + sanitize(*iss, 120) +
                                          "\", not \"" + options_.issuer + "\" (RFC 9207)"));
    return page(http::status::bad_request, "Login failed", "The callback came from another issuer.");
  }
  if (auto err = q->get("error")) {
    auto what = "the authorization server answered " + sanitize(*err, 64);
    if (auto d = q->get("error_description")) what += ": " + sanitize(*d);
    deliver(make_error(errc::refused, what));
    return page(http::status::ok, "Login failed", what);
  }
  auto code = q->get("code");
  if (!code || code->empty()) {
    deliver(make_error(errc::malformed, "the callback carried neither a code nor an error"));
    return page(http::status::bad_request, "Login failed", "The callback carried no code.");
  }
  broker::login_input in;
  in.code = secret{std::move(*code)};
  in.code_verifier = verifier_;
  in.redirect_uri = redirect_uri_;
  deliver(std::move(in));
  delivered = true;
  return page(http::status::ok, "Authorization received", "");
}

}  // namespace tokenbroker::oauth2
