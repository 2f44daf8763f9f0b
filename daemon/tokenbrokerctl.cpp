// tokenbrokerctl: the command-line client of tokenbrokerd's local API.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using json = nlohmann::json;

enum exit_code { ok = 0, refused = 1, usage_error = 2, unreachable = 3 };

constexpr const char* usage = R"(Usage: tokenbrokerctl [--socket PATH] COMMAND [ARGS]

Commands:
  token NAME [--min-valid SECONDS]   print a valid access token for credential NAME
  status                             show every credential's state as a table
  ready                              exit 0 when every credential holds a usable token
                                     (GET /readyz), else print those that do not and exit 1
  health                             exit 0 when the daemon serves (GET /healthz)
  refresh NAME                       force one refresh of NAME and show its status
  exec NAME -- CMD [ARGS...]         run CMD with the token in $TOKENBROKER_TOKEN
  login NAME [--username USER] [--profile-token-file FILE] [--refresh-token-file FILE]
                                     run an interactive grant: asks for the profile login
                                     (the password is never echoed) or reads a profile token;
                                     oauth2 credentials print a URL to open in a browser
                                     (authorization_code) or take a new refresh token

Options:
  --socket PATH   the daemon's socket (default $TOKENBROKER_SOCKET or
                  /run/tokenbroker/tokenbroker.sock)
  --help          this help

Exit codes: 0 success, 1 the broker said no (or is not ready), 2 usage, 3 broker unreachable.
)";

struct reply {
  unsigned status = 0;
  json body;
  std::string raw;
};

std::optional<reply> call(const std::string& socket_path, bhttp::verb method,
                          const std::string& target, const std::string& body = {},
                          time_t timeout_seconds = 120) {
  net::io_context io;
  net::local::stream_protocol::socket s(io);
  boost::system::error_code ec;
  s.connect(net::local::stream_protocol::endpoint(socket_path), ec);
  if (ec) {
    std::fprintf(stderr, "tokenbrokerctl: cannot reach the broker at %s: %s\n",
                 socket_path.c_str(), ec.message().c_str());
    return std::nullopt;
  }
  timeval tv{timeout_seconds, 0};  // the broker bounds its own waits; this guards against a hang
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  bhttp::request<bhttp::string_body> req{method, target, 11};
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::user_agent, "tokenbrokerctl");
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  bhttp::write(s, req, ec);
  beast::flat_buffer buf;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(8 * 1024 * 1024);
  if (!ec) bhttp::read(s, buf, parser, ec);
  if (ec) {
    std::fprintf(stderr, "tokenbrokerctl: broker at %s did not answer: %s\n", socket_path.c_str(),
                 ec.message().c_str());
    return std::nullopt;
  }
  reply r;
  r.status = parser.get().result_int();
  r.raw = parser.get().body();
  r.body = json::parse(r.raw, nullptr, false);
  return r;
}

int broker_said_no(const reply& r) {
  std::string msg = r.body.is_object() && r.body.contains("message")
                        ? r.body["message"].get<std::string>()
                        : r.raw;
  std::string code = r.body.is_object() && r.body.contains("error")
                         ? r.body["error"].get<std::string>()
                         : std::to_string(r.status);
  std::fprintf(stderr, "tokenbrokerctl: %s: %s\n", code.c_str(), msg.c_str());
  return refused;
}

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  if (it != j.end() && it->is_number()) return it->dump();
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("-");
}

std::optional<std::string> fetch_token(const std::string& sock, const std::string& name,
                                       const std::string& min_valid, int& rc) {
  std::string target = "/v1/token/" + name;
  if (!min_valid.empty()) target += "?min_valid=" + min_valid;
  auto r = call(sock, bhttp::verb::get, target);
  if (!r) {
    rc = unreachable;
    return std::nullopt;
  }
  if (r->status != 200) {
    rc = broker_said_no(*r);
    return std::nullopt;
  }
  return r->body.value("access_token", "");
}

int cmd_status(const std::string& sock) {
  auto r = call(sock, bhttp::verb::get, "/v1/credentials");
  if (!r) return unreachable;
  if (r->status != 200) return broker_said_no(*r);
  // Replicas sharing credentials through etcd also show etcd's health, and each credential's
  // cluster role and how often this replica took its refreshing over.
  bool cluster = false;
  for (const auto& c : r->body["credentials"]) cluster = cluster || c.contains("cluster_role");
  if (const auto& info = r->body.value("cluster", json::object()); info.contains("etcd_up"))
    std::printf("etcd: %s\n\n", info["etcd_up"] == true ? "up" : "DOWN (not answering)");
  std::printf("%-20s %-10s %-12s %-22s %-22s %s%s\n", "NAME", "PROVIDER", "STATE", "EXPIRES_AT",
              "REFRESH_AT", cluster ? "ROLE      HANDOVERS " : "", "LAST_ERROR");
  for (const auto& c : r->body["credentials"]) {
    std::string err = c["last_error"].is_string() ? c["last_error"].get<std::string>() : "-";
    std::string role;
    if (cluster) {
      role = text(c, "cluster_role");
      role.resize(std::max<std::size_t>(role.size() + 1, 10), ' ');
      std::string handovers = text(c, "lock_handovers");
      handovers.resize(std::max<std::size_t>(handovers.size() + 1, 10), ' ');
      role += handovers;
    }
    std::printf("%-20s %-10s %-12s %-22s %-22s %s%s\n", text(c, "name").c_str(),
                text(c, "provider").c_str(), text(c, "state").c_str(),
                text(c, "expires_at").c_str(), text(c, "refresh_at").c_str(), role.c_str(),
                err.c_str());
  }
  return ok;
}

// Probes (Kubernetes exec probes, scripts): /readyz and /healthz answer at once, so a broker
// that takes longer is as good as down.
constexpr time_t probe_timeout_seconds = 10;

int cmd_ready(const std::string& sock) {
  auto r = call(sock, bhttp::verb::get, "/readyz", {}, probe_timeout_seconds);
  if (!r) return unreachable;
  if (r->status == 200) {
    std::printf("ready\n");
    return ok;
  }
  if (r->status != 503 || !r->body.is_object()) return broker_said_no(*r);
  std::fprintf(stderr, "tokenbrokerctl: not ready:");
  auto list = r->body.value("credentials", json::array());
  for (const auto& c : list)
    if (c.is_object())
      std::fprintf(stderr, " %s (%s)", text(c, "name").c_str(), text(c, "state").c_str());
  std::fprintf(stderr, "\n");
  return refused;
}

int cmd_health(const std::string& sock) {
  auto r = call(sock, bhttp::verb::get, "/healthz", {}, probe_timeout_seconds);
  if (!r) return unreachable;
  if (r->status != 200) return broker_said_no(*r);
  std::printf("ok\n");
  return ok;
}

std::string read_hidden(const char* prompt) {
  std::fprintf(stderr, "%s", prompt);
  std::fflush(stderr);
  termios old{};
  bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  return line;
}

std::optional<std::string> read_token_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    std::fprintf(stderr, "tokenbrokerctl: cannot read %s\n", path.c_str());
    return std::nullopt;
  }
  char buf[8192];
  std::size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  std::string t(buf, n);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

// The credential's provider as /v1/credentials shows it ("" when not listed to this caller).
std::string provider_of(const std::string& sock, const std::string& name) {
  auto r = call(sock, bhttp::verb::get, "/v1/credentials");
  if (!r || r->status != 200 || !r->body.is_object()) return {};
  auto list = r->body["credentials"];  // named: a range-for over a temporary's member dangles
  for (const auto& c : list)
    if (c.is_object() && c.value("name", "") == name) return c.value("provider", "");
  return {};
}

// Opens `url` in the person's browser when a graphical session is there; the URL is printed
// either way, so a headless machine's user can open it elsewhere.
void open_browser(const std::string& url) {
  auto set = [](const char* v) { return std::getenv(v) && *std::getenv(v); };
  if (!set("DISPLAY") && !set("WAYLAND_DISPLAY")) return;
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
    }
    ::execlp("xdg-open", "xdg-open", url.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);  // no xdg-open: the printed URL is enough
  }
  if (pid > 0) ::waitpid(pid, nullptr, WNOHANG);  // never wait on the browser
}

// The authorization_code grant: the daemon listens for the browser's redirect; we show the URL
// and wait for the outcome in bounded steps until the daemon's own deadline.
int browser_login(const std::string& sock, const std::string& name) {
  auto target = "/v1/credentials/" + name + "/login";
  auto r = call(sock, bhttp::verb::post, target, "{}");
  if (!r) return unreachable;
  if (r->status != 202) return broker_said_no(*r);
  auto url = text(r->body, "authorization_url");
  std::printf("Open this URL in a browser to log in to %s (valid until %s):\n\n  %s\n\n",
              name.c_str(), text(r->body, "expires_at").c_str(), url.c_str());
  std::fflush(stdout);
  open_browser(url);
  for (;;) {
    auto w = call(sock, bhttp::verb::post, target, R"({"wait":true})");
    if (!w) return unreachable;
    if (w->status == 202) continue;  // still waiting; the daemon ends it at its deadline
    if (w->status != 200) return broker_said_no(*w);
    std::printf("%s: logged in; state %s, token valid until %s\n", name.c_str(),
                text(w->body, "state").c_str(), text(w->body, "expires_at").c_str());
    return ok;
  }
}

int cmd_login(const std::string& sock, const std::string& name, std::vector<std::string> args) {
  json body = json::object();
  std::string username, token_file, refresh_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--username" && i + 1 < args.size()) username = args[++i];
    else if (args[i] == "--profile-token-file" && i + 1 < args.size()) token_file = args[++i];
    else if (args[i] == "--refresh-token-file" && i + 1 < args.size()) refresh_file = args[++i];
    else {
      std::fprintf(stderr, "tokenbrokerctl: login: unknown argument \"%s\"\n", args[i].c_str());
      return usage_error;
    }
  }
  if (!refresh_file.empty()) {
    auto t = read_token_file(refresh_file);
    if (!t) return usage_error;
    body["refresh_token"] = *t;
  } else if (!token_file.empty()) {
    auto t = read_token_file(token_file);
    if (!t) return usage_error;
    body["profile_token"] = *t;
  } else if (username.empty() && provider_of(sock, name) == "oauth2") {
    return browser_login(sock, name);
  } else {
    if (username.empty()) {
      std::fprintf(stderr, "Privicore profile username: ");
      std::getline(std::cin, username);
    }
    body["username"] = username;
    body["password"] = read_hidden("Password: ");
  }
  auto r = call(sock, bhttp::verb::post, "/v1/credentials/" + name + "/login", body.dump());
  if (!r) return unreachable;
  if (r->status != 200) return broker_said_no(*r);
  std::printf("%s: logged in; state %s, token valid until %s\n", name.c_str(),
              text(r->body, "state").c_str(), text(r->body, "expires_at").c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  std::string sock = std::getenv("TOKENBROKER_SOCKET") ? std::getenv("TOKENBROKER_SOCKET")
                                                      : "/run/tokenbroker/tokenbroker.sock";
  // Global options may stand anywhere before "--" (what follows belongs to exec's command).
  std::vector<std::string> args;
  for (int k = 1; k < argc; ++k) {
    std::string a = argv[k];
    if (a == "--") {
      args.insert(args.end(), argv + k, argv + argc);
      break;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return ok;
    } else if (a == "--socket" && k + 1 < argc) {
      sock = argv[++k];
    } else if (a.starts_with("--socket=")) {
      sock = a.substr(9);
    } else {
      args.push_back(std::move(a));
    }
  }
  std::size_t i = 0;
  if (!args.empty() && args[0].starts_with("-")) {
    std::fprintf(stderr, "tokenbrokerctl: unknown option \"%s\"\n%s", args[0].c_str(), usage);
    return usage_error;
  }
  if (i >= args.size()) {
    std::fputs(usage, stderr);
    return usage_error;
  }
  std::string cmd = args[i++];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  auto need_name = [&]() -> bool {
    if (rest.empty() || rest[0].starts_with("-")) {
      std::fprintf(stderr, "tokenbrokerctl: %s needs a credential NAME\n", cmd.c_str());
      return false;
    }
    return true;
  };

  if (cmd == "status") {
    if (!rest.empty()) {
      std::fprintf(stderr, "tokenbrokerctl: status takes no arguments\n");
      return usage_error;
    }
    return cmd_status(sock);
  }
  if (cmd == "ready" || cmd == "health") {
    if (!rest.empty()) {
      std::fprintf(stderr, "tokenbrokerctl: %s takes no arguments\n", cmd.c_str());
      return usage_error;
    }
    return cmd == "ready" ? cmd_ready(sock) : cmd_health(sock);
  }
  if (cmd == "token") {
    if (!need_name()) return usage_error;
    std::string min_valid;
    if (rest.size() == 3 && rest[1] == "--min-valid") min_valid = rest[2];
    else if (rest.size() != 1) return std::fputs(usage, stderr), usage_error;
    int rc = ok;
    auto t = fetch_token(sock, rest[0], min_valid, rc);
    if (!t) return rc;
    std::printf("%s\n", t->c_str());
    return ok;
  }
  if (cmd == "refresh") {
    if (!need_name()) return usage_error;
    auto r = call(sock, bhttp::verb::post, "/v1/credentials/" + rest[0] + "/refresh");
    if (!r) return unreachable;
    if (r->status != 200) return broker_said_no(*r);
    std::printf("%s: %s, token valid until %s\n", rest[0].c_str(), text(r->body, "state").c_str(),
                text(r->body, "expires_at").c_str());
    return ok;
  }
  if (cmd == "exec") {
    if (!need_name()) return usage_error;
    if (rest.size() < 3 || rest[1] != "--") {
      std::fprintf(stderr, "tokenbrokerctl: usage: exec NAME -- CMD [ARGS...]\n");
      return usage_error;
    }
    int rc = ok;
    auto t = fetch_token(sock, rest[0], "", rc);
    if (!t) return rc;
    ::setenv("TOKENBROKER_TOKEN", t->c_str(), 1);
    std::vector<char*> cargv;
    for (std::size_t k = 2; k < rest.size(); ++k) cargv.push_back(rest[k].data());
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "tokenbrokerctl: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    return 127;
  }
  if (cmd == "login") {
    if (!need_name()) return usage_error;
    return cmd_login(sock, rest[0], std::vector<std::string>(rest.begin() + 1, rest.end()));
  }
  std::fprintf(stderr, "tokenbrokerctl: unknown command \"%s\"\n%s", cmd.c_str(), usage);
  return usage_error;
}
