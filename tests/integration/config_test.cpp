// tokenbrokerd --check: every mistake refused with the file, the key and what is wrong.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;

namespace {

struct check_result {
  int code;
  std::string output;
};

struct config_case {
  temp_dir dir;
  std::string secret = dir.write("secret", "s3cret\n");
  std::string password = dir.write("password", "pw\n");
  std::string state_key = dir.write("state.key", std::string(64, 'a') + "\n");

  config_case() {
    ::chmod(secret.c_str(), 0600);
    ::chmod(password.c_str(), 0600);
    ::chmod(state_key.c_str(), 0600);
  }

  std::string valid_credential() const {
    return "[credential.privicore]\nprovider = \"privicore\"\n"
           "api_url = \"https://sandbox.privicore.com:9009\"\nclient_id = \"abc\"\n"
           "client_secret_file = \"" + secret + "\"\nallow_uids = [1000]\n";
  }
  std::string server() const { return "[server]\nsocket = \"" + dir.file("s.sock") + "\"\n"; }
  std::string keyed_server() const {
    return server() + "state_key_file = \"" + state_key + "\"\n";
  }

  check_result check(const std::string& toml, mode_t mode = 0600) const {
    auto path = dir.write("tb.toml", toml);
    ::chmod(path.c_str(), mode);
    process p(process_options{{bin_path("tokenbrokerd"), "--check", "--config", path}, {}, {},
                              dir.file("check.log")});
    auto out = p.wait_for_line([](const std::string&) { return false; }, 10s);
    auto st = p.wait_exit(10s);
    REQUIRE(st.has_value());
    std::string text = p.stderr_text();
    for (const auto& l : p.lines()) text += l + "\n";
    return {st->code, text};
  }
};

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("a_valid_config_passes_check") {
  config_case c;
  auto r = c.check(c.server() + c.valid_credential());
  CHECK(r.code == 0);
  CHECK(contains(r.output, "OK (1 credential)"));
}

TEST_CASE("a_credential_without_an_allow_list_is_accepted_with_a_warning") {
  config_case c;
  auto cfg = c.server() + c.valid_credential();
  cfg.replace(cfg.find("allow_uids = [1000]\n"), 20, "");
  auto r = c.check(cfg);
  CHECK(r.code == 0);
  CHECK(contains(r.output, "warning: "));
  CHECK(contains(r.output, "credential.privicore.allow_uids: no allow_uids/allow_gids"));
}

TEST_CASE("check_names_file_key_and_problem_for_each_mistake") {
  config_case c;
  auto file = c.dir.file("tb.toml");
  struct mistake {
    std::string toml;
    std::string key;
    std::string problem;
  };
  std::vector<mistake> mistakes = {
      {c.server() + c.valid_credential() + "bogus = 1\n", "credential.privicore.bogus",
       "unknown key"},
      {c.server() + "colour = \"blue\"\n" + c.valid_credential(), "server.colour", "unknown key"},
      {"[server]\nsocket_mode = 660\n" + c.valid_credential(), "server.socket_mode",
       "must be an octal string"},
      {"[server]\nsocket_mode = \"0666\"\n" + c.valid_credential(), "server.socket_mode",
       "must not grant access to others"},
      {"[server]\nsocket = 5\n" + c.valid_credential(), "server.socket", "must be a string"},
      {"[server]\nsocket = \"relative.sock\"\n" + c.valid_credential(), "server.socket",
       "must be an absolute path"},
      {c.server() + "[credential.privicore]\nprovider = \"privicore\"\napi_url = \"not a url\"\n"
                    "client_id = \"a\"\nclient_secret_file = \"" + c.secret + "\"\n",
       "credential.privicore.api_url", "bad URL"},
      {c.server() + "[credential.privicore]\nprovider = \"privicore\"\n"
                    "api_url = \"http://example.com\"\nclient_id = \"a\"\n"
                    "client_secret_file = \"" + c.secret + "\"\n",
       "credential.privicore.api_url", "loopback hosts only"},
      {c.server() + "[credential.privicore]\nprovider = \"privicore\"\n"
                    "api_url = \"https://h\"\nclient_id = \"a\"\n"
                    "client_secret_file = \"" + c.dir.file("missing") + "\"\n",
       "credential.privicore.client_secret_file", "cannot read"},
      {c.server() + "[credential.privicore]\nprovider = \"privicore\"\napi_url = \"https://h\"\n"
                    "client_secret_file = \"" + c.secret + "\"\n",
       "credential.privicore.client_id", "is required"},
      {c.server() + "[credential.privicore]\nprovider = \"ldap\"\n", "credential.privicore.provider",
       "must be \"privicore\" or \"oauth2\""},
      {c.server() + c.valid_credential() + "refresh_margin = \"soon\"\n",
       "credential.privicore.refresh_margin", "must be a duration"},
      {c.server() + c.valid_credential() + "username = \"u\"\n",
       "credential.privicore.password_file", "is required when username is set"},
      {c.server() + c.valid_credential() + "inject_format = \"Bearer\"\n",
       "credential.privicore.inject_format", "must contain {token}"},
      {c.server() + c.valid_credential() + "inject_format = \"{token}\\r\\nX-Evil: 1\"\n",
       "credential.privicore.inject_format", "must not contain a line break or NUL"},
      {"[server]\nlisten = \"0.0.0.0:8780\"\n" + c.valid_credential(), "server.listen",
       "not a loopback address"},
      {c.server(), "credential", "no [credential.NAME] table"},
      {c.server() + c.valid_credential() + "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\n",
       "server.state_key_file", "is required with [cluster]"},
      {c.keyed_server() + c.valid_credential() + "[cluster]\netcd = []\n", "cluster.etcd",
       "at least one endpoint"},
      {c.keyed_server() + c.valid_credential() + "[cluster]\netcd = [\"http://etcd.example:2379\"]\n",
       "cluster.etcd", "loopback hosts only"},
      {c.keyed_server() + c.valid_credential() +
           "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nlock_ttl = \"1s\"\n",
       "cluster.lock_ttl", "between 2s and 5m"},
      {c.keyed_server() + c.valid_credential() +
           "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nusername = \"tb\"\n",
       "cluster.password_file", "is required when username is set"},
      {c.keyed_server() + c.valid_credential() +
           "[cluster]\netcd = [\"https://etcd.example:2379\"]\ntls_skip_verify = true\n",
       "cluster.tls_skip_verify", "only for loopback endpoints"},
      {c.keyed_server() + c.valid_credential() +
           "[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nleader = true\n",
       "cluster.leader", "unknown key"},
  };
  for (const auto& m : mistakes) {
    CAPTURE(m.toml);
    auto r = c.check(m.toml);
    CHECK(r.code == 1);
    CHECK_MESSAGE(contains(r.output, file + ": " + m.key + ": "), r.output);
    CHECK_MESSAGE(contains(r.output, m.problem), r.output);
  }
}

TEST_CASE("a_cluster_table_with_every_option_passes_check") {
  config_case c;
  auto r = c.check(c.keyed_server() + c.valid_credential() +
                   "[cluster]\netcd = [\"http://127.0.0.1:2379\", \"https://etcd.example:2379\"]\n"
                   "prefix = \"/team-a/brokers\"\nreplica_id = \"pod-1\"\nlock_ttl = \"15s\"\n"
                   "username = \"tb\"\npassword_file = \"" + c.password + "\"\n");
  CHECK_MESSAGE(r.code == 0, r.output);
}

TEST_CASE("check_reports_every_mistake_at_once") {
  config_case c;
  auto r = c.check("[server]\nsocket_mode = 1\nbogus = 2\n" + c.valid_credential() + "x = 1\n");
  CHECK(r.code == 1);
  CHECK(contains(r.output, "server.socket_mode"));
  CHECK(contains(r.output, "server.bogus"));
  CHECK(contains(r.output, "credential.privicore.x"));
}

TEST_CASE("secret_files_readable_by_others_are_refused") {
  config_case c;
  ::chmod(c.secret.c_str(), 0644);
  auto r = c.check(c.server() + c.valid_credential());
  CHECK(r.code == 1);
  CHECK(contains(r.output, "credential.privicore.client_secret_file"));
  CHECK(contains(r.output, "mode 0644"));
  // An operator may downgrade this to a warning, explicitly.
  auto relaxed = c.check("[server]\nsecret_permissions = \"warn\"\nsocket = \"" +
                         c.dir.file("s.sock") + "\"\n" + c.valid_credential());
  CHECK(relaxed.code == 0);
  CHECK(contains(relaxed.output, "mode 0644"));
}

TEST_CASE("an_etcd_client_key_readable_by_others_is_refused") {
  config_case c;
  auto cert = c.dir.write("etcd-client.pem", "certificate\n");
  auto key = c.dir.write("etcd-client.key", "private key\n");
  ::chmod(key.c_str(), 0640);
  auto cluster = "[cluster]\netcd = [\"https://etcd.example:2379\"]\ncert_file = \"" + cert +
                 "\"\nkey_file = \"" + key + "\"\n";
  auto r = c.check(c.keyed_server() + c.valid_credential() + cluster);
  CHECK(r.code == 1);
  CHECK_MESSAGE(contains(r.output, "cluster.key_file: " + key + " has mode 0640"), r.output);
  ::chmod(key.c_str(), 0600);
  auto ok = c.check(c.keyed_server() + c.valid_credential() + cluster);
  CHECK_MESSAGE(ok.code == 0, ok.output);
}

TEST_CASE("inline_secrets_are_refused_in_a_config_others_can_read") {
  config_case c;
  auto cfg = c.server() +
             "[credential.privicore]\nprovider = \"privicore\"\napi_url = \"https://h\"\n"
             "client_id = \"a\"\nclient_secret = \"inline\"\n";
  auto open = c.check(cfg, 0644);
  CHECK(open.code == 1);
  CHECK(contains(open.output, "credential.privicore.client_secret: inline secrets are refused"));
  CHECK(c.check(cfg, 0600).code == 0);
}

TEST_CASE("toml_syntax_errors_name_the_line") {
  config_case c;
  auto r = c.check("[server]\nsocket = \"/tmp/x\"\nsocket = \"/tmp/y\"\n");
  CHECK(r.code == 1);
  CHECK(contains(r.output, c.dir.file("tb.toml") + ":3:"));
  CHECK(c.check("").code == 1);
  process p(process_options{{bin_path("tokenbrokerd"), "--check", "--config", "/nonexistent.toml"},
                            {}, {}, c.dir.file("x.log")});
  auto st = p.wait_exit(10s);
  REQUIRE(st.has_value());
  CHECK(st->code == 1);
  CHECK(contains(p.stderr_text(), "/nonexistent.toml: cannot read"));
}
