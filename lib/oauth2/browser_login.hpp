// One browser login for the authorization_code grant (RFC 6749 §4.1 with PKCE, RFC 8252 §7.3):
// a one-shot redirect listener on a loopback address, the state and code_verifier that bind the
// callback to this login, and the outcome that `tokenbrokerctl login` and the browser wait for.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "broker/provider.hpp"
#include "core/asio.hpp"
#include "core/change_signal.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "core/time.hpp"
#include "http/beast.hpp"
#include "http/url.hpp"

namespace tokenbroker::oauth2 {

/// Where the browser is sent back to: http://HOST:PORT/PATH on a loopback address only.
struct redirect_endpoint {
  std::string host = "127.0.0.1";  // "127.0.0.1", "localhost" or "::1"; bound on loopback
  std::uint16_t port = 0;          // 0: an ephemeral port, as RFC 8252 §7.3 recommends
  std::string path = "/callback";
};

struct browser_login_options {
  std::string name;  // the credential, for logs
  http::url authorization_endpoint;
  std::string client_id;
  std::string scope;
  redirect_endpoint redirect;
  std::string issuer;  // the callback's `iss` must match when both are known (RFC 9207)
  std::chrono::milliseconds timeout{std::chrono::minutes{5}};
};

class browser_login {
 public:
  struct private_tag {};
  browser_login(private_tag, net::any_io_executor ex, browser_login_options options);
  ~browser_login();

  /// Binds the redirect listener, draws state and code_verifier, and starts serving. errc::io
  /// when the address cannot be bound. The flow ends at the first valid callback, at its
  /// deadline or on cancel(); the listener then closes.
  static result<std::shared_ptr<browser_login>> open(net::any_io_executor ex,
                                                      browser_login_options options);

  /// The URL a person opens (state and code_challenge included; the verifier never leaves).
  const std::string& authorization_url() const noexcept { return authorization_url_; }
  const std::string& redirect_uri() const noexcept { return redirect_uri_; }
  sys_seconds expires_at() const noexcept { return expires_at_; }

  /// Waits for the browser: the material for the code exchange (code, verifier, redirect_uri),
  /// or why there is none (the provider's error, timeout, cancel).
  awaitable<result<broker::login_input>> wait_for_callback();
  /// Records how the login ended; the browser's page and every waiter see it. Closes the
  /// listener. Later calls are ignored.
  void finish(result<void> outcome);
  /// Waits until the outcome is known (true) or `deadline` passes (false).
  awaitable<bool> wait_outcome(steady_clock::time_point deadline);
  /// How the login ended; nullopt while pending.
  const std::optional<result<void>>& outcome() const noexcept { return outcome_; }
  /// Ends a pending login with errc::unavailable and `why`.
  void cancel(const std::string& why);
  bool done() const noexcept { return outcome_.has_value(); }

 private:
  static awaitable<void> run_accept(std::shared_ptr<browser_login> self);
  static awaitable<void> run_deadline(std::shared_ptr<browser_login> self);
  static awaitable<void> run_session(std::shared_ptr<browser_login> self, http::tcp::socket s);
  /// The answer to one request; `delivered` is set when it carried the awaited code.
  http::response handle_request(const http::request& req, bool& delivered);
  void deliver(result<broker::login_input> r);
  void close_listener();

  net::any_io_executor ex_;
  browser_login_options options_;
  http::tcp::acceptor acceptor_;
  net::steady_timer deadline_timer_;
  secret state_;
  secret verifier_;
  std::string authorization_url_, redirect_uri_;
  sys_seconds expires_at_{};
  steady_clock::time_point deadline_{};
  std::optional<result<broker::login_input>> callback_;
  std::optional<result<void>> outcome_;
  change_signal changes_;  // the callback or the outcome arrived
  std::size_t sessions_ = 0;
};

}  // namespace tokenbroker::oauth2
