#include "config/config.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cstdlib>
#include <set>
#include <toml++/toml.h>

#include "config/path_vars.hpp"
#include "config/secret_source.hpp"
#include "core/time.hpp"

namespace tokenbroker::config {
namespace {

// Collects every problem so --check can show them all at once.
struct checker {
  std::string file;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  bool strict_secret_permissions = true;

  void fail(const std::string& key, const std::string& what) {
    errors.push_back(file + ": " + key + ": " + what);
  }
  void warn(const std::string& key, const std::string& what) {
    warnings.push_back(file + ": " + key + ": " + what);
  }

  void unknown_keys(const toml::table& t, const std::string& prefix,
                    std::initializer_list<std::string_view> known) {
    for (const auto& [k, v] : t) {
      std::string_view key = k.str();
      bool ok = false;
      for (auto kk : known) ok = ok || kk == key;
      if (!ok) fail(prefix + std::string(key), "unknown key");
    }
  }

  std::optional<std::string> str(const toml::table& t, const std::string& prefix,
                                 std::string_view key) {
    auto node = t.get(key);
    if (!node) return std::nullopt;
    if (auto s = node->value<std::string>(); s && node->is_string()) return *s;
    fail(prefix + std::string(key), "must be a string");
    return std::nullopt;
  }

  // A string naming a file or directory; ${CREDENTIALS_DIRECTORY} and systemd's other directory
  // variables are expanded (path_vars.hpp), so a unit's LoadCredential= files can be named.
  std::optional<std::string> file_path(const toml::table& t, const std::string& prefix,
                                       std::string_view key) {
    auto s = str(t, prefix, key);
    if (!s) return std::nullopt;
    auto expanded = expand_path(*s);
    if (!expanded) {
      fail(prefix + std::string(key), expanded.error().message);
      return std::nullopt;
    }
    return *expanded;
  }

  std::optional<bool> boolean(const toml::table& t, const std::string& prefix,
                              std::string_view key) {
    auto node = t.get(key);
    if (!node) return std::nullopt;
    if (node->is_boolean()) return node->value<bool>();
    fail(prefix + std::string(key), "must be true or false");
    return std::nullopt;
  }

  std::optional<std::chrono::milliseconds> duration(const toml::table& t,
                                                    const std::string& prefix,
                                                    std::string_view key) {
    auto node = t.get(key);
    if (!node) return std::nullopt;
    if (node->is_integer()) return std::chrono::seconds{*node->value<std::int64_t>()};
    if (auto s = node->value<std::string>(); s && node->is_string()) {
      if (auto d = parse_duration(*s)) return d;
    }
    fail(prefix + std::string(key), "must be a duration such as \"90s\", \"5m\" or \"1h\"");
    return std::nullopt;
  }

  std::optional<http::url> url(const toml::table& t, const std::string& prefix,
                               std::string_view key, bool websocket = false) {
    auto s = str(t, prefix, key);
    if (!s) return std::nullopt;
    auto u = http::url::parse(*s);
    if (!u) {
      fail(prefix + std::string(key), u.error().message);
      return std::nullopt;
    }
    bool ws = u->scheme == "ws" || u->scheme == "wss";
    if (ws != websocket) {
      fail(prefix + std::string(key),
           websocket ? "must be a ws:// or wss:// URL" : "must be an http:// or https:// URL");
      return std::nullopt;
    }
    if (!u->tls() && !u->loopback()) {
      fail(prefix + std::string(key),
           "plain " + u->scheme + " is allowed for loopback hosts only; use " +
               (websocket ? "wss://" : "https://"));
      return std::nullopt;
    }
    return *u;
  }

  std::vector<std::string> strings(const toml::table& t, const std::string& prefix,
                                   std::string_view key, std::vector<std::string> fallback) {
    auto node = t.get(key);
    if (!node) return fallback;
    auto arr = node->as_array();
    std::vector<std::string> out;
    if (!arr) {
      fail(prefix + std::string(key), "must be an array of strings");
      return fallback;
    }
    for (const auto& e : *arr) {
      if (auto s = e.value<std::string>(); s && e.is_string()) out.push_back(*s);
      else fail(prefix + std::string(key), "must be an array of strings");
    }
    return out;
  }

  // Numeric ids, or user/group names resolved through NSS.
  template <class Id>
  std::vector<Id> ids(const toml::table& t, const std::string& prefix, std::string_view key,
                      bool groups) {
    std::vector<Id> out;
    auto node = t.get(key);
    if (!node) return out;
    auto arr = node->as_array();
    if (!arr) {
      fail(prefix + std::string(key), "must be an array of numeric ids or names");
      return out;
    }
    for (const auto& e : *arr) {
      if (e.is_integer() && *e.value<std::int64_t>() >= 0) {
        out.push_back(static_cast<Id>(*e.value<std::int64_t>()));
      } else if (e.is_string()) {
        auto name = *e.value<std::string>();
        if (groups) {
          if (auto* g = ::getgrnam(name.c_str())) out.push_back(static_cast<Id>(g->gr_gid));
          else fail(prefix + std::string(key), "no such group \"" + name + "\"");
        } else {
          if (auto* p = ::getpwnam(name.c_str())) out.push_back(static_cast<Id>(p->pw_uid));
          else fail(prefix + std::string(key), "no such user \"" + name + "\"");
        }
      } else {
        fail(prefix + std::string(key), "must be an array of numeric ids or names");
      }
    }
    return out;
  }

  // KEY_file, KEY_env or (only in a file nobody else can read) inline KEY.
  std::optional<secret> secret_value(const toml::table& t, const std::string& prefix,
                                     const std::string& key, bool config_private) {
    auto path = file_path(t, prefix, key + "_file");
    auto env = str(t, prefix, key + "_env");
    auto inline_value = str(t, prefix, key);
    int given = (path ? 1 : 0) + (env ? 1 : 0) + (inline_value ? 1 : 0);
    if (given == 0) return std::nullopt;
    if (given > 1) {
      fail(prefix + key, "give only one of " + key + "_file, " + key + "_env");
      return std::nullopt;
    }
    if (inline_value) {
      if (!config_private) {
        fail(prefix + key, "inline secrets are refused in a config file readable by others; use " +
                               key + "_file or " + key + "_env");
        return std::nullopt;
      }
      return secret{*inline_value};
    }
    if (env) {
      const char* v = std::getenv(env->c_str());
      if (!v || !*v) {
        fail(prefix + key + "_env", "environment variable " + *env + " is not set or empty");
        return std::nullopt;
      }
      return secret{v};
    }
    auto r = read_secret_file_checked(*path, strict_secret_permissions);
    if (!r.value) {
      fail(prefix + key + "_file", r.problem);
      return std::nullopt;
    }
    if (!r.problem.empty()) warn(prefix + key + "_file", r.problem);
    return std::move(*r.value);
  }
};

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return n != "." && n != "..";
}

void load_server(checker& c, const toml::table& t, server_config& s) {
  const std::string p = "server.";
  c.unknown_keys(t, p, {"socket", "socket_mode", "listen", "listen_public", "state_dir",
                        "state_key_file", "max_connections", "token_wait",
                        "secret_permissions"});
  if (auto v = c.file_path(t, p, "socket")) {
    if (v->empty() || v->front() != '/') c.fail(p + "socket", "must be an absolute path");
    else if (v->size() >= 108) c.fail(p + "socket", "path is too long for a unix socket");
    else s.socket = *v;
  }
  if (auto node = t.get("socket_mode")) {
    std::optional<std::string> text = node->value<std::string>();
    unsigned mode = 0;
    bool ok = node->is_string() && text && !text->empty();
    if (ok) {
      auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), mode, 8);
      ok = ec == std::errc{} && ptr == text->data() + text->size() && mode <= 0777;
    }
    if (!ok) c.fail(p + "socket_mode", "must be an octal string such as \"0660\"");
    else if (mode & 0007) c.fail(p + "socket_mode", "must not grant access to others");
    else s.socket_mode = mode;
  }
  if (auto b = c.boolean(t, p, "listen_public")) s.listen_non_loopback = *b;
  if (auto v = c.str(t, p, "listen")) {
    auto colon = v->rfind(':');
    std::string host = colon == std::string::npos ? "" : v->substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(host, ec);
    auto portstr = colon == std::string::npos ? std::string{} : v->substr(colon + 1);
    auto [ptr, pec] = std::from_chars(portstr.data(), portstr.data() + portstr.size(), port);
    if (ec || pec != std::errc{} || ptr != portstr.data() + portstr.size() || port > 65535) {
      c.fail(p + "listen", "must be an IP address and port such as \"127.0.0.1:8780\"");
    } else if (!addr.is_loopback() && !s.listen_non_loopback) {
      c.fail(p + "listen", host + " is not a loopback address; set listen_public = true to "
                                   "expose tokens beyond this host");
    } else {
      s.listen_host = host;
      s.listen_port = static_cast<std::uint16_t>(port);
    }
  }
  if (auto v = c.file_path(t, p, "state_dir")) s.state_dir = *v;
  if (auto v = c.file_path(t, p, "state_key_file")) s.state_key_file = *v;
  if (auto node = t.get("max_connections")) {
    if (node->is_integer() && *node->value<std::int64_t>() > 0)
      s.max_connections = static_cast<std::size_t>(*node->value<std::int64_t>());
    else c.fail(p + "max_connections", "must be a positive integer");
  }
  if (auto d = c.duration(t, p, "token_wait")) s.token_wait = *d;
}

// The authorization_code grant's browser login: where to send the person, where the browser
// comes back (a loopback address only, RFC 8252 §7.3), how long to wait.
void load_oauth2_login(checker& c, const std::string& p, const toml::table& t,
                       credential_config& cred) {
  bool code_grant = cred.grant == oauth2_grant::authorization_code;
  for (const char* k : {"authorization_url", "redirect_uri", "login_timeout"})
    if (!code_grant && t.get(k)) c.fail(p + k, "is used by grant = \"authorization_code\" only");
  cred.authorization_url = c.url(t, p, "authorization_url");
  if (code_grant && cred.token_url && !t.get("authorization_url"))
    c.fail(p + "authorization_url", "is required for grant = \"authorization_code\" with "
                                    "token_url (or configure issuer for discovery)");
  if (auto d = c.duration(t, p, "login_timeout")) {
    if (d->count() <= 0) c.fail(p + "login_timeout", "must be positive");
    else cred.login_timeout = *d;
  }
  auto text = c.str(t, p, "redirect_uri");
  if (!text) return;
  auto u = http::url::parse(*text);
  // No port in the URI: an ephemeral one (url::parse would say 80).
  auto start = text->find("://");
  auto authority = start == std::string::npos
                       ? std::string{}
                       : text->substr(start + 3, text->find_first_of("/?", start + 3) - start - 3);
  auto host_end = authority.starts_with("[") ? authority.find(']') : 0;
  bool explicit_port = host_end != std::string::npos &&
                       authority.find(':', host_end) != std::string::npos;
  if (!u || u->scheme != "http" || !u->query.empty() ||
      !(u->host == "127.0.0.1" || u->host == "localhost" || u->host == "::1")) {
    c.fail(p + "redirect_uri", "must be http://127.0.0.1[:PORT]/PATH (or localhost, [::1]): "
                               "the browser comes back to a loopback listener");
    return;
  }
  cred.redirect_host = u->host;
  cred.redirect_port = explicit_port ? u->port : 0;
  cred.redirect_path = u->path;
}

void load_credential(checker& c, const std::string& name, const toml::table& t,
                     bool config_private, credential_config& cred) {
  const std::string p = "credential." + name + ".";
  cred.name = name;
  if (!valid_name(name))
    c.fail("credential." + name, "names may use letters, digits, '-', '_' and '.' only");
  auto provider = c.str(t, p, "provider");
  if (!provider) {
    c.fail(p + "provider", "is required (\"privicore\" or \"oauth2\")");
    return;
  }
  if (*provider == "privicore") cred.provider = provider_kind::privicore;
  else if (*provider == "oauth2") cred.provider = provider_kind::oauth2;
  else return c.fail(p + "provider", "must be \"privicore\" or \"oauth2\"");

  std::vector<std::string_view> known = {
      "provider", "api_url", "client_id", "client_secret", "client_secret_file",
      "client_secret_env", "inject_header", "inject_format", "allow_uids", "allow_gids",
      "ca_file", "tls_skip_verify", "refresh_margin", "timeout"};
  if (cred.provider == provider_kind::privicore) {
    for (auto k : {"ws_url", "username", "password", "password_file", "password_env", "scopes",
                   "status_method"})
      known.push_back(k);
  } else {
    for (auto k : {"token_url", "issuer", "grant", "client_auth", "refresh_token",
                   "refresh_token_file", "refresh_token_env", "scope", "authorization_url",
                   "redirect_uri", "login_timeout"})
      known.push_back(k);
  }
  for (const auto& [k, v] : t) {
    if (std::find(known.begin(), known.end(), k.str()) == known.end())
      c.fail(p + std::string(k.str()), "unknown key for provider \"" + *provider + "\"");
  }

  cred.api_url = c.url(t, p, "api_url");
  if (auto v = c.str(t, p, "client_id")) cred.client_id = *v;
  if (auto s = c.secret_value(t, p, "client_secret", config_private)) cred.client_secret = *s;
  if (auto v = c.file_path(t, p, "ca_file")) {
    struct stat st{};
    if (::stat(v->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) c.fail(p + "ca_file", "no such file " + *v);
    else cred.ca_file = *v;
  }
  if (auto b = c.boolean(t, p, "tls_skip_verify")) cred.tls_skip_verify = *b;
  if (auto d = c.duration(t, p, "refresh_margin")) cred.refresh_margin = *d;
  if (auto d = c.duration(t, p, "timeout")) {
    if (d->count() <= 0) c.fail(p + "timeout", "must be positive");
    else cred.timeout = *d;
  }
  cred.allow_uids = c.ids<uid_t>(t, p, "allow_uids", false);
  cred.allow_gids = c.ids<gid_t>(t, p, "allow_gids", true);
  if (cred.allow_uids.empty() && cred.allow_gids.empty())
    c.warn(p + "allow_uids", "no allow_uids/allow_gids: anyone who can open the socket may use "
                             "this credential");

  bool privicore = cred.provider == provider_kind::privicore;
  cred.inject_header = c.str(t, p, "inject_header").value_or(privicore ? "X-DPT-AUTHORIZATION"
                                                                       : "Authorization");
  cred.inject_format = c.str(t, p, "inject_format").value_or(privicore ? "{token}"
                                                                       : "Bearer {token}");
  if (cred.inject_format.find("{token}") == std::string::npos)
    c.fail(p + "inject_format", "must contain {token}");
  // A header value: no line break (it would end the header) nor NUL. Checked once here; the
  // proxy checks each token it puts in.
  if (cred.inject_format.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    c.fail(p + "inject_format", "must not contain a line break or NUL");
  for (char ch : cred.inject_header)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'))
      c.fail(p + "inject_header", "is not a valid header name");

  if (privicore) {
    if (!cred.api_url && !t.get("api_url")) c.fail(p + "api_url", "is required");
    cred.ws_url = c.url(t, p, "ws_url", true);
    if (cred.client_id.empty()) c.fail(p + "client_id", "is required");
    if (cred.client_secret.empty() && !t.get("client_secret_file") && !t.get("client_secret_env"))
      c.fail(p + "client_secret_file", "is required (or client_secret_env)");
    if (auto v = c.str(t, p, "username")) cred.username = *v;
    if (auto s = c.secret_value(t, p, "password", config_private)) cred.password = *s;
    bool has_pw = t.get("password") || t.get("password_file") || t.get("password_env");
    if (!cred.username.empty() && !has_pw)
      c.fail(p + "password_file", "is required when username is set");
    if (cred.username.empty() && has_pw) c.fail(p + "username", "is required with a password");
    cred.scopes = c.strings(t, p, "scopes", {"all"});
    if (cred.scopes.empty()) c.fail(p + "scopes", "must not be empty");
    if (auto v = c.str(t, p, "status_method")) {
      if (*v == "auto") cred.privicore_status_method = status_method::automatic;
      else if (*v == "get") cred.privicore_status_method = status_method::get;
      else if (*v == "post") cred.privicore_status_method = status_method::post;
      else c.fail(p + "status_method", "must be \"auto\", \"get\" or \"post\"");
    }
  } else {
    cred.token_url = c.url(t, p, "token_url");
    cred.issuer = c.url(t, p, "issuer");
    bool has_token_url = t.get("token_url") != nullptr, has_issuer = t.get("issuer") != nullptr;
    if (has_token_url == has_issuer) c.fail(p + "token_url", "give exactly one of token_url or issuer");
    if (cred.client_id.empty()) c.fail(p + "client_id", "is required");
    if (auto v = c.str(t, p, "grant")) {
      if (*v == "refresh_token") cred.grant = oauth2_grant::refresh_token;
      else if (*v == "client_credentials") cred.grant = oauth2_grant::client_credentials;
      else if (*v == "authorization_code") cred.grant = oauth2_grant::authorization_code;
      else c.fail(p + "grant", "must be refresh_token, client_credentials or authorization_code");
    }
    if (auto v = c.str(t, p, "client_auth")) {
      if (*v == "client_secret_post") cred.auth = client_auth::client_secret_post;
      else if (*v == "client_secret_basic") cred.auth = client_auth::client_secret_basic;
      else c.fail(p + "client_auth", "must be client_secret_post or client_secret_basic");
    }
    if (auto s = c.secret_value(t, p, "refresh_token", config_private)) cred.refresh_token = *s;
    if (auto v = c.str(t, p, "scope")) cred.scope = *v;
    bool has_secret = !cred.client_secret.empty() || t.get("client_secret_file") ||
                      t.get("client_secret_env") || t.get("client_secret");
    if (cred.grant == oauth2_grant::client_credentials && !has_secret)
      c.fail(p + "client_secret_file", "is required for grant = \"client_credentials\"");
    if (cred.auth == client_auth::client_secret_basic && !has_secret)
      c.fail(p + "client_auth", "client_secret_basic needs a client_secret_file (or _env)");
    load_oauth2_login(c, p, t, cred);
  }

  if (cred.tls_skip_verify) {
    for (const auto* u : {&cred.api_url, &cred.token_url, &cred.issuer})
      if (*u && !(*u)->loopback())
        c.fail(p + "tls_skip_verify", "is allowed only when every URL is a loopback address");
    if (cred.ws_url && !cred.ws_url->loopback())
      c.fail(p + "tls_skip_verify", "is allowed only when every URL is a loopback address");
  }
}

cluster_config load_cluster(checker& c, const toml::table& t, bool config_private) {
  const std::string p = "cluster.";
  c.unknown_keys(t, p, {"etcd", "prefix", "replica_id", "lock_ttl", "username", "password",
                        "password_file", "password_env", "ca_file", "cert_file", "key_file",
                        "tls_skip_verify"});
  cluster_config cc;
  auto endpoints = c.strings(t, p, "etcd", {});
  if (endpoints.empty()) c.fail(p + "etcd", "must list at least one endpoint");
  for (const auto& s : endpoints) {
    auto u = http::url::parse(s);
    if (!u) c.fail(p + "etcd", u.error().message);
    else if (u->scheme != "http" && u->scheme != "https")
      c.fail(p + "etcd", s + ": must be an http:// or https:// URL");
    else if (!u->tls() && !u->loopback())
      c.fail(p + "etcd", s + ": plain http is allowed for loopback hosts only; use https://");
    else cc.etcd.push_back(*u);
  }
  if (auto v = c.str(t, p, "prefix")) {
    if (v->empty() || v->front() != '/') c.fail(p + "prefix", "must start with '/'");
    cc.prefix = *v;
    if (cc.prefix.back() != '/') cc.prefix += '/';
  }
  if (auto v = c.str(t, p, "replica_id")) {
    if (v->empty()) c.fail(p + "replica_id", "must not be empty");
    cc.replica_id = *v;
  }
  if (auto d = c.duration(t, p, "lock_ttl")) {
    if (*d < std::chrono::seconds{2} || *d > std::chrono::minutes{5})
      c.fail(p + "lock_ttl", "must be between 2s and 5m");
    else cc.lock_ttl = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }
  if (auto v = c.str(t, p, "username")) cc.username = *v;
  if (auto s = c.secret_value(t, p, "password", config_private)) cc.password = *s;
  bool has_pw = t.get("password") || t.get("password_file") || t.get("password_env");
  if (!cc.username.empty() && !has_pw) c.fail(p + "password_file", "is required when username is set");
  if (cc.username.empty() && has_pw) c.fail(p + "username", "is required with a password");
  for (auto [key, dst] : {std::pair{"ca_file", &cc.ca_file}, std::pair{"cert_file", &cc.cert_file},
                          std::pair{"key_file", &cc.key_file}}) {
    auto v = c.file_path(t, p, key);
    if (!v) continue;
    struct stat st{};
    if (::stat(v->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      c.fail(p + key, "no such file " + *v);
      continue;
    }
    *dst = *v;
    // The client certificate's private key is a secret like any other.
    auto problem = std::string_view(key) == "key_file" ? permission_problem(*v, st.st_mode) : "";
    if (problem.empty()) continue;
    if (c.strict_secret_permissions)
      c.fail(p + key, permission_error(problem));
    else
      c.warn(p + key, problem);
  }
  if (cc.cert_file.empty() != cc.key_file.empty())
    c.fail(p + "cert_file", "cert_file and key_file go together");
  if (auto b = c.boolean(t, p, "tls_skip_verify")) cc.tls_skip_verify = *b;
  if (cc.tls_skip_verify)
    for (const auto& u : cc.etcd)
      if (!u.loopback()) c.fail(p + "tls_skip_verify", "is allowed only for loopback endpoints");
  return cc;
}

}  // namespace

const credential_config* config::find(std::string_view name) const {
  for (const auto& c : credentials)
    if (c.name == name) return &c;
  return nullptr;
}

result<config> load(const std::string& path) {
  checker c{path, {}, {}};
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0)
    return make_error(errc::io, path + ": cannot read: " + std::strerror(errno));
  bool config_private = (st.st_mode & 0077) == 0;

  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return make_error(errc::invalid_argument,
                      path + ":" + std::to_string(e.source().begin.line) + ":" +
                          std::to_string(e.source().begin.column) + ": " +
                          std::string(e.description()));
  }

  config cfg;
  cfg.path = path;
  c.unknown_keys(root, "", {"server", "credential", "cluster"});
  if (auto* server = root.get_as<toml::table>("server")) {
    if (auto mode = c.str(*server, "server.", "secret_permissions")) {
      if (*mode == "warn") c.strict_secret_permissions = false;
      else if (*mode != "strict") c.fail("server.secret_permissions", "must be \"strict\" or \"warn\"");
    }
    load_server(c, *server, cfg.server);
  } else if (root.get("server")) {
    c.fail("server", "must be a table");
  }
  if (auto* creds = root.get_as<toml::table>("credential")) {
    for (const auto& [name, node] : *creds) {
      auto* t = node.as_table();
      if (!t) {
        c.fail("credential." + std::string(name.str()), "must be a table");
        continue;
      }
      credential_config cred;
      load_credential(c, std::string(name.str()), *t, config_private, cred);
      cfg.credentials.push_back(std::move(cred));
    }
  }
  if (cfg.credentials.empty()) c.fail("credential", "no [credential.NAME] table is configured");
  if (auto* cl = root.get_as<toml::table>("cluster")) {
    cfg.cluster = load_cluster(c, *cl, config_private);
    if (cfg.server.state_key_file.empty())
      c.fail("server.state_key_file",
             "is required with [cluster]: replicas share tokens encrypted under one key");
  } else if (root.get("cluster")) {
    c.fail("cluster", "must be a table");
  }
  if (!cfg.server.state_key_file.empty()) {
    struct stat ks{};
    if (::stat(cfg.server.state_key_file.c_str(), &ks) != 0)
      c.fail("server.state_key_file", "cannot read " + cfg.server.state_key_file);
  }

  if (!c.errors.empty()) {
    std::string msg;
    for (const auto& e : c.errors) msg += (msg.empty() ? "" : "\n") + e;
    return make_error(errc::invalid_argument, msg);
  }
  cfg.warnings = std::move(c.warnings);
  return cfg;
}

result<secret> read_secret_file(const std::string& path) {
  auto r = read_secret_file_checked(path, true);
  if (!r.value) return make_error(errc::io, path + ": " + r.problem);
  return std::move(*r.value);
}

}  // namespace tokenbroker::config
