#include "oauth2_fixture.hpp"

#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "broker_fixture.hpp"
#include "http/form.hpp"
#include "http/url.hpp"

namespace tokenbroker::test {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

std::string write_secret(const temp_dir& dir, const std::string& name, const std::string& content) {
  auto path = dir.file(name);
  std::ofstream(path) << content << "\n";
  ::chmod(path.c_str(), 0600);
  return path;
}

oidc_peer::oidc_peer(std::chrono::seconds access_ttl) {
  process_options o;
  o.argv = {"node", std::string(TB_OIDC_PEER_DIR) + "/server.mjs", "--access-ttl",
            std::to_string(access_ttl.count())};
  proc_ = std::make_unique<process>(o);
  const std::string prefix = "oidc-peer listening on ";
  auto line = proc_->wait_for_line([&](const std::string& l) { return l.starts_with(prefix); },
                                   std::chrono::seconds{30});
  if (!line)
    throw std::runtime_error("the OpenID provider peer did not start (is `npm ci` done in " +
                             std::string(TB_OIDC_PEER_DIR) + "?):\n" + proc_->stderr_text());
  url_ = line->substr(prefix.size());
}

oidc_peer::~oidc_peer() {
  if (proc_) proc_->terminate();
}

nlohmann::json oidc_peer::admin(const std::string& method, const std::string& target,
                                const std::string& body) const {
  auto r = http_call(url_, "", method, target, {{"content-type", "application/json"}}, body,
                     std::chrono::seconds{10});
  if (r.status != 200)
    throw std::runtime_error("peer admin " + method + " " + target + ": " +
                             std::to_string(r.status) + " " + r.body + r.error);
  return r.json();
}

nlohmann::json oidc_peer::token_requests() const { return admin("GET", "/_admin/token-requests"); }

void oidc_peer::fault(int status, int count, const std::string& retry_after) const {
  nlohmann::json f{{"status", status}, {"count", count}};
  if (!retry_after.empty()) f["retry_after"] = retry_after;
  admin("POST", "/_admin/fault", f.dump());
}

int oidc_peer::revoke(const std::string& client_id) const {
  return admin("POST", "/_admin/revoke", nlohmann::json{{"client_id", client_id}}.dump())["revoked"]
      .get<int>();
}

std::string oidc_peer::mint_refresh_token(const std::string& client_id,
                                          const std::string& scope) const {
  nlohmann::json req{{"client_id", client_id}, {"account", person}, {"scope", scope}};
  return admin("POST", "/_admin/mint-refresh-token", req.dump())["refresh_token"].get<std::string>();
}

oauth2_broker::oauth2_broker(const std::string& credentials,
                             const std::map<std::string, std::string>& files, bool persist)
    : dir_(std::make_unique<temp_dir>()) {
  for (const auto& [name, content] : files) write_secret(*dir_, name, content);
  socket_ = dir_->file("tb.sock");
  config_ = dir_->file("tokenbroker.toml");
  std::string cfg = "[server]\nsocket = \"" + socket_ + "\"\nsocket_mode = \"0600\"\n" +
                    "state_dir = \"" + dir_->file("state") + "\"\n";
  if (persist) {
    write_secret(*dir_, "state.key", std::string(64, 'b'));
    cfg += "state_key_file = \"" + dir_->file("state.key") + "\"\n";
  }
  cfg += "\n" + replace_all(credentials, "{dir}", dir_->path()) + "\n";
  write_secret(*dir_, "tokenbroker.toml", cfg);
  start();
}

oauth2_broker::~oauth2_broker() {
  if (proc_) proc_->terminate();
}

void oauth2_broker::start() {
  proc_ = std::make_unique<process>(process_options{
      {bin_path("tokenbrokerd"), "--config", config_, "--log-level", "debug"}, {}, {},
      dir_->file("broker" + std::to_string(starts_++) + ".log")});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{15};
  while (std::chrono::steady_clock::now() < deadline) {
    if (unix_call(socket_, "GET", "/healthz", {}, {}, std::chrono::seconds{1}).status == 200) return;
    if (!proc_->running())
      throw std::runtime_error("tokenbrokerd exited at start:\n" + proc_->stderr_text());
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  throw std::runtime_error("tokenbrokerd did not start:\n" + proc_->stderr_text());
}

void oauth2_broker::restart(int sig) {
  proc_->kill(sig);
  proc_->wait_exit(std::chrono::seconds{15});
  start();
}

http_result oauth2_broker::call(const std::string& method, const std::string& target,
                                const std::string& body, std::chrono::milliseconds timeout) const {
  return unix_call(socket_, method, target, {}, body, timeout);
}

std::string oauth2_broker::token(const std::string& name) const {
  auto r = call("GET", "/v1/token/" + name);
  if (r.status != 200)
    throw std::runtime_error("token " + name + ": " + std::to_string(r.status) + " " + r.body +
                             r.error);
  return r.json()["access_token"].get<std::string>();
}

nlohmann::json oauth2_broker::status(const std::string& name) const {
  auto r = call("GET", "/v1/credentials");
  if (r.status != 200) return nullptr;
  auto body = r.json();  // named: a range-for over a temporary's member would dangle
  for (const auto& c : body["credentials"])
    if (c["name"] == name) return c;
  return nullptr;
}

bool oauth2_broker::wait_for_state(const std::string& name, const std::string& state,
                                   std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = status(name);
    if (s.is_object() && s["state"] == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return false;
}

std::unique_ptr<process> oauth2_broker::ctl(std::vector<std::string> args) const {
  std::vector<std::string> argv{bin_path("tokenbrokerctl"), "--socket", socket_};
  argv.insert(argv.end(), args.begin(), args.end());
  process_options o;
  o.argv = std::move(argv);
  o.env = {{"DISPLAY", ""}, {"WAYLAND_DISPLAY", ""}};
  return std::make_unique<process>(o);
}

browser::page browser::request(const std::string& method, const std::string& url,
                               const std::string& form) {
  auto u = http::url::parse(url);
  if (!u || u->tls()) throw std::runtime_error("browser: unusable URL " + url);
  net::io_context io;
  net::ip::tcp::socket s(io);
  s.connect({net::ip::make_address(u->host == "localhost" ? "127.0.0.1" : u->host), u->port});
  timeval tv{30, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), u->target(), 11};
  req.set(bhttp::field::host, u->host_header());
  req.set(bhttp::field::user_agent, "tokenbroker-test-browser");
  std::string jar;
  for (const auto& [k, v] : cookies_) jar += (jar.empty() ? "" : "; ") + k + "=" + v;
  if (!jar.empty()) req.set(bhttp::field::cookie, jar);
  if (!form.empty()) {
    req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
    req.body() = form;
  }
  req.prepare_payload();
  bhttp::write(s, req);
  boost::beast::flat_buffer buf;
  bhttp::response<bhttp::string_body> res;
  bhttp::read(s, buf, res);
  page p;
  p.status = static_cast<int>(res.result_int());
  p.body = res.body();
  for (const auto& f : res) {
    if (f.name() == bhttp::field::set_cookie) {
      std::string c(f.value());
      auto eq = c.find('='), semi = c.find(';');
      if (eq != std::string::npos && eq < semi) cookies_[c.substr(0, eq)] = c.substr(eq + 1, semi - eq - 1);
    }
  }
  std::string loc(res[bhttp::field::location]);
  if (!loc.empty() && loc.front() == '/') loc = u->origin() + loc;
  p.location = loc;
  return p;
}

std::string browser::authorize(const std::string& authorization_url, const std::string& user,
                               const std::string& password, bool allow) {
  auto origin = http::url::parse(authorization_url).value().origin();
  std::string next = authorization_url, method = "GET", form;
  for (int step = 0; step < 16; ++step) {
    auto p = request(method, next, form);
    method = "GET";
    form.clear();
    if (p.status >= 300 && p.status < 400) {
      if (!p.location.starts_with(origin + "/")) return p.location;  // back to the client
      next = p.location;
      continue;
    }
    if (p.status != 200)
      throw std::runtime_error("browser: " + next + " answered " + std::to_string(p.status) +
                               ": " + p.body);
    // A page with forms: the login form, or the consent page (allow or deny).
    auto action_of = [&](const std::string& suffix) -> std::string {
      for (auto pos = p.body.find("action=\""); pos != std::string::npos;
           pos = p.body.find("action=\"", pos + 1)) {
        auto start = pos + 8, end = p.body.find('"', start);
        auto a = p.body.substr(start, end - start);
        if (a.ends_with(suffix)) return a;
      }
      return {};
    };
    if (auto login = action_of("/login"); !login.empty()) {
      form = http::form{}.add("login", user).add("password", password).encode();
      next = origin + login;
    } else if (auto consent = action_of(allow ? "/confirm" : "/abort"); !consent.empty()) {
      next = origin + consent;
    } else {
      throw std::runtime_error("browser: no form to submit on " + next + ":\n" + p.body);
    }
    method = "POST";
  }
  throw std::runtime_error("browser: too many steps from " + authorization_url);
}

}  // namespace tokenbroker::test
