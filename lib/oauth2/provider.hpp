// The broker's provider for `provider = "oauth2"` credentials: an RFC 6749 token endpoint with
// the refresh_token, client_credentials or authorization_code (+ PKCE) grant, its endpoints
// configured or found by OpenID discovery.
#pragma once

#include <memory>
#include <optional>

#include "broker/provider.hpp"
#include "config/config.hpp"
#include "http/client.hpp"
#include "oauth2/browser_login.hpp"
#include "oauth2/discovery.hpp"
#include "oauth2/requests.hpp"

namespace tokenbroker::oauth2 {

class provider final : public broker::provider {
 public:
  /// `http` must outlive the provider.
  provider(net::any_io_executor ex, const config::credential_config& cfg, http::client& http);
  ~provider() override;

  /// grant_type=refresh_token with `current.refresh_token`; a rotated refresh token replaces
  /// it in the answer, none keeps it. client_credentials renews by granting again.
  awaitable<result<std::optional<broker::token_bundle>>> refresh(
      const broker::token_bundle& current) override;
  /// grant_type=client_credentials; errc::unavailable for the other grants (they need a person).
  awaitable<result<broker::token_bundle>> grant() override;
  bool can_grant() const override { return grant_ == config::oauth2_grant::client_credentials; }
  /// Exchanges an authorization code (input.code, code_verifier, redirect_uri), or starts over
  /// from a refresh token an operator hands over (input.refresh_token).
  awaitable<result<broker::token_bundle>> login(const broker::login_input& input) override;
  bool uses_refresh_token() const override { return !can_grant(); }
  /// The configured refresh_token (refresh_token and authorization_code grants), once.
  std::optional<broker::token_bundle> seed() const override;
  void stop() override;

  /// True for the authorization_code grant: logins run in a browser (begin_login()).
  bool browser_grant() const noexcept {
    return grant_ == config::oauth2_grant::authorization_code;
  }
  /// Opens a browser login (redirect listener, state, PKCE), replacing one still pending.
  /// Needs the authorization endpoint, hence discovery when an issuer is configured.
  awaitable<result<std::shared_ptr<browser_login>>> begin_login();
  /// The browser login started last (pending or finished), if any.
  std::shared_ptr<browser_login> current_login() const { return login_; }

 private:
  /// The endpoints: configured, or discovered once and then cached. Failures are returned (the
  /// engine backs off and calls again) and never cached.
  awaitable<result<endpoints>> do_endpoints();
  /// POSTs `req` to the token endpoint and parses the answer; messages are scrubbed of the
  /// secrets in `sent`.
  awaitable<result<broker::token_bundle>> do_token_request(const token_request& req,
                                                           const std::vector<const secret*>& sent);
  awaitable<result<broker::token_bundle>> do_refresh(const secret& refresh_token,
                                                     const std::string& grant_id,
                                                     const std::string& scope_held);

  net::any_io_executor ex_;
  std::string name_;
  http::client& http_;
  client_identity client_;
  config::oauth2_grant grant_;
  std::string scope_;
  secret seed_refresh_token_;
  std::optional<http::url> token_url_;
  std::optional<http::url> authorization_url_;
  std::optional<http::url> issuer_;
  std::optional<endpoints> discovered_;
  redirect_endpoint redirect_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds login_timeout_;
  std::shared_ptr<browser_login> login_;
};

}  // namespace tokenbroker::oauth2
