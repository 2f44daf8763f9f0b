// The typed, validated, immutable configuration (INTERFACE.md "Configuration").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/secret.hpp"
#include "http/url.hpp"

namespace tokenbroker::config {

struct server_config {
  std::string socket = "/run/tokenbroker/tokenbroker.sock";
  unsigned socket_mode = 0660;
  std::optional<std::string> listen_host;  // loopback TCP listener, if configured
  std::uint16_t listen_port = 0;
  bool listen_non_loopback = false;  // `listen_public = true`: explicit opt-in to a non-loopback bind
  std::string state_dir = "/var/lib/tokenbroker";
  std::string state_key_file;  // empty: tokens are kept in memory only
  std::size_t max_connections = 4096;
  std::chrono::milliseconds token_wait{std::chrono::seconds{10}};  // bound for callers that wait
};

enum class provider_kind { privicore, oauth2 };
enum class oauth2_grant { refresh_token, client_credentials, authorization_code };
enum class client_auth { client_secret_post, client_secret_basic };
enum class status_method { automatic, get, post };

struct credential_config {
  std::string name;
  provider_kind provider = provider_kind::privicore;
  std::optional<http::url> api_url;  // privicore: required; oauth2: proxy target (optional)
  std::optional<http::url> ws_url;   // privicore acks over WebSocket, else polling
  std::string client_id;
  secret client_secret;
  std::string username;  // profile login for unattended grants (privicore)
  secret password;
  std::vector<std::string> scopes{"all"};
  std::string inject_header;
  std::string inject_format;
  std::vector<uid_t> allow_uids;
  std::vector<gid_t> allow_gids;
  std::string ca_file;
  bool tls_skip_verify = false;  // honoured for loopback URLs only
  std::chrono::milliseconds refresh_margin{std::chrono::seconds{60}};
  std::chrono::milliseconds timeout{std::chrono::seconds{30}};
  status_method privicore_status_method = status_method::automatic;
  // oauth2
  std::optional<http::url> token_url;
  std::optional<http::url> issuer;
  oauth2_grant grant = oauth2_grant::refresh_token;
  client_auth auth = client_auth::client_secret_post;
  secret refresh_token;  // initial refresh token, consumed once into the state store
  std::string scope;     // oauth2: space-separated
  std::optional<http::url> authorization_url;  // authorization_code without discovery
  std::string redirect_host = "127.0.0.1";      // authorization_code: the loopback redirect
  std::uint16_t redirect_port = 0;              // 0: ephemeral
  std::string redirect_path = "/callback";
  std::chrono::milliseconds login_timeout{std::chrono::minutes{5}};  // browser login bound

  bool has_login() const noexcept { return !username.empty() && !password.empty(); }
};

// Replicas sharing their credentials through etcd (issue 8, docs/INTERFACE.md "Cluster").
struct cluster_config {
  std::vector<http::url> etcd;
  std::string prefix = "/tokenbroker/";  // every key lives under it; ends with '/'
  std::string replica_id;                // names this replica in etcd and logs (default host:pid)
  std::chrono::milliseconds lock_ttl{std::chrono::seconds{10}};  // the refresh lock's lease
  std::string username;  // etcd authentication (optional)
  secret password;
  std::string ca_file;    // https endpoints: extra trusted CAs
  std::string cert_file;  // client certificate for etcd's client-cert authentication
  std::string key_file;
  bool tls_skip_verify = false;  // loopback endpoints only
};

struct config {
  std::string path;  // the file it came from
  server_config server;
  std::vector<credential_config> credentials;
  std::optional<cluster_config> cluster;
  std::vector<std::string> warnings;  // not fatal, shown by --check and logged at start

  const credential_config* find(std::string_view name) const;
};

/// Reads, parses and validates `path`, resolving every secret (`KEY_file` / `KEY_env`).
/// On failure the error message lists every problem as "FILE: KEY: what is wrong", one per line.
result<config> load(const std::string& path);

/// Reads a secret file: must exist, be a regular file, be readable, and not be readable or
/// writable by group or others. Trailing newlines are stripped.
result<secret> read_secret_file(const std::string& path);

}  // namespace tokenbroker::config
