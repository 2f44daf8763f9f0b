#include "app/reload.hpp"

#include <optional>
#include <tuple>
#include <utility>

namespace tokenbroker::app {
namespace {

std::string text(const std::optional<http::url>& u) {
  return u ? u->origin() + u->target() : std::string{};
}

// Records `key` when `a != b`, with what the difference implies.
struct comparer {
  credential_change& out;

  template <class T>
  bool differs(const char* key, const T& a, const T& b) {
    if (a == b) return false;
    out.keys.emplace_back(key);
    return true;
  }
  void identity(const char* key, const auto& a, const auto& b) {
    if (differs(key, a, b)) out.new_grant = out.new_provider = true;
  }
  void provider_input(const char* key, const auto& a, const auto& b) {
    if (differs(key, a, b)) out.new_provider = true;
  }
  void tls(const char* key, const auto& a, const auto& b) {
    if (differs(key, a, b)) out.new_client = out.new_provider = true;
  }
  void served(const char* key, const auto& a, const auto& b) { differs(key, a, b); }
};

}  // namespace

credential_change compare(const config::credential_config& was,
                          const config::credential_config& now) {
  credential_change out;
  comparer c{out};
  // Grant identity: who issues the tokens, to which client, for whom, for what.
  c.identity("provider", was.provider, now.provider);
  c.identity("client_id", was.client_id, now.client_id);
  c.identity("username", was.username, now.username);
  c.identity("scopes", was.scopes, now.scopes);
  c.identity("scope", was.scope, now.scope);
  c.identity("grant", was.grant, now.grant);
  c.identity("token_url", text(was.token_url), text(now.token_url));
  c.identity("issuer", text(was.issuer), text(now.issuer));
  c.identity("authorization_url", text(was.authorization_url), text(now.authorization_url));
  // Privicore issues its tokens at api_url; for oauth2 it is only where the proxy forwards to.
  if (now.provider == config::provider_kind::privicore)
    c.identity("api_url", text(was.api_url), text(now.api_url));
  else
    c.served("api_url", text(was.api_url), text(now.api_url));
  // Secrets and what the provider is built with: a new provider, the same tokens.
  c.provider_input("client_secret", was.client_secret, now.client_secret);
  c.provider_input("password", was.password, now.password);
  c.provider_input("refresh_token", was.refresh_token, now.refresh_token);
  c.provider_input("auth", was.auth, now.auth);
  c.provider_input("ws_url", text(was.ws_url), text(now.ws_url));
  c.provider_input("timeout", was.timeout, now.timeout);
  c.provider_input("status_method", was.privicore_status_method, now.privicore_status_method);
  c.provider_input("redirect_host", was.redirect_host, now.redirect_host);
  c.provider_input("redirect_port", was.redirect_port, now.redirect_port);
  c.provider_input("redirect_path", was.redirect_path, now.redirect_path);
  c.provider_input("login_timeout", was.login_timeout, now.login_timeout);
  c.tls("ca_file", was.ca_file, now.ca_file);
  c.tls("tls_skip_verify", was.tls_skip_verify, now.tls_skip_verify);
  // Served settings: applied to requests that start after the reload.
  c.served("refresh_margin", was.refresh_margin, now.refresh_margin);
  c.served("inject_header", was.inject_header, now.inject_header);
  c.served("inject_format", was.inject_format, now.inject_format);
  c.served("allow_uids", was.allow_uids, now.allow_uids);
  c.served("allow_gids", was.allow_gids, now.allow_gids);
  return out;
}

std::vector<std::string> restart_only_changes(const config::config& was_config,
                                              const config::config& now_config) {
  const auto& was = was_config.server;
  const auto& now = now_config.server;
  std::vector<std::string> keys;
  auto check = [&](const char* key, const auto& a, const auto& b) {
    if (!(a == b)) keys.emplace_back(key);
  };
  auto etcd = [](const config::config& c) {
    std::vector<std::string> urls;
    if (c.cluster)
      for (const auto& u : c.cluster->etcd) urls.push_back(u.origin() + u.target());
    return std::make_pair(c.cluster.has_value(), urls);
  };
  check("cluster", etcd(was_config), etcd(now_config));
  check("server.socket", was.socket, now.socket);
  check("server.socket_mode", was.socket_mode, now.socket_mode);
  check("server.listen", std::tie(was.listen_host, was.listen_port),
        std::tie(now.listen_host, now.listen_port));
  check("server.listen_public", was.listen_non_loopback, now.listen_non_loopback);
  check("server.state_dir", was.state_dir, now.state_dir);
  check("server.state_key_file", was.state_key_file, now.state_key_file);
  check("server.max_connections", was.max_connections, now.max_connections);
  return keys;
}

config::server_config applied_server(const config::server_config& was,
                                     const config::server_config& now) {
  auto s = was;
  s.token_wait = now.token_wait;
  return s;
}

}  // namespace tokenbroker::app
