// tokenbrokerd: holds OAuth credentials and hands valid tokens to local programs.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "app/app.hpp"
#include "config/config.hpp"
#include "core/log.hpp"
#include "store/file_store.hpp"

namespace {

constexpr const char* usage = R"(Usage: tokenbrokerd [OPTIONS]

Holds OAuth credentials (Privicore, OAuth2) and hands valid bearer tokens to local
programs over a unix socket (and optionally loopback TCP).

Options:
  --config FILE        configuration file (default /etc/tokenbroker/tokenbroker.toml)
  --check              validate the configuration and secret files, print problems, exit
                       0 when valid, 1 otherwise
  --log-level LEVEL    trace, debug, info (default), warn, error
  --log-format FORMAT  text (default) or json
  --version            print the version and exit
  --help               print this help and exit

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the configuration and secret files and
applies them, keeping tokens and connections (an invalid configuration is refused, logged and
the running one kept).
systemd: Type=notify readiness and watchdog; sockets passed by socket activation (LISTEN_FDS)
replace server.socket and server.listen. Paths in the configuration may use
${CREDENTIALS_DIRECTORY}, ${RUNTIME_DIRECTORY}, ${STATE_DIRECTORY} and ${CONFIGURATION_DIRECTORY}.
Logs go to stderr. Secrets never appear in logs: tokens show as <secret sha256:xxxxxxxx>.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace tokenbroker;
  std::string config_path = "/etc/tokenbroker/tokenbroker.toml";
  bool check = false;
  auto level = log::level::info;
  auto format = log::format::text;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view name) -> std::string {
      if (auto eq = a.find('='); eq != std::string_view::npos) return std::string(a.substr(eq + 1));
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tokenbrokerd: %.*s needs a value\n", int(name.size()), name.data());
        std::exit(2);
      }
      return argv[++i];
    };
    auto is = [&](std::string_view name) { return a == name || a.starts_with(std::string(name) + "="); };
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("tokenbrokerd %s\n", TOKENBROKER_VERSION);
      return 0;
    } else if (a == "--check") {
      check = true;
    } else if (is("--config")) {
      config_path = value("--config");
    } else if (is("--log-level")) {
      auto v = value("--log-level");
      auto l = log::parse_level(v);
      if (!l) {
        std::fprintf(stderr, "tokenbrokerd: unknown log level \"%s\"\n", v.c_str());
        return 2;
      }
      level = *l;
    } else if (is("--log-format")) {
      auto v = value("--log-format");
      auto f = log::parse_format(v);
      if (!f) {
        std::fprintf(stderr, "tokenbrokerd: unknown log format \"%s\" (text or json)\n", v.c_str());
        return 2;
      }
      format = *f;
    } else {
      std::fprintf(stderr, "tokenbrokerd: unknown option \"%s\"\n%s", argv[i], usage);
      return 2;
    }
  }
  log::configure(level, format);

  auto cfg = config::load(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  if (check) {
    if (!cfg->server.state_key_file.empty()) {
      if (auto key = store::read_state_key(cfg->server.state_key_file); !key) {
        std::fprintf(stderr, "%s: server.state_key_file: %s\n", config_path.c_str(),
                     key.error().message.c_str());
        return 1;
      }
    }
    for (const auto& w : cfg->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("%s: OK (%zu credential%s)\n", config_path.c_str(), cfg->credentials.size(),
                cfg->credentials.size() == 1 ? "" : "s");
    return 0;
  }
  return app::run_daemon(std::move(*cfg));
}
