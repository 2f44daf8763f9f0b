// Secrets never leak (issue 5): the whole lifecycle at the most verbose log level, in text and
// in JSON logs, then every secret the simulator issued or was given is looked for in the
// daemon's output, /v1/credentials, /metrics, /readyz, /v1/token answers (beyond the access token
// of the credential asked for) and the state files (raw, base64 and hex).
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* second_client_id = "second-client";
constexpr const char* second_client_secret = "second-client-secret-value";

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::string base64(const std::string& s, bool url) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  if (url)
    for (auto& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

std::string hex(const std::string& s, bool upper) {
  static const char* lower_digits = "0123456789abcdef";
  static const char* upper_digits = "0123456789ABCDEF";
  const char* d = upper ? upper_digits : lower_digits;
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

struct known_secret {
  std::string kind, value;
};

/// The ways a secret could sit in a file without being encrypted: raw, hex, and base64 (standard
/// and URL alphabets) at each of the three alignments it could have inside a longer encoding.
std::vector<std::string> encodings(const std::string& v) {
  std::vector<std::string> out{v, hex(v, false), hex(v, true)};
  for (bool url : {false, true})
    for (std::size_t shift = 0; shift < 3; ++shift) {
      auto enc = base64(std::string(shift, '\0') + v, url);
      // Drop the characters that depend on the neighbouring bytes: the first group when shifted,
      // the last group always.
      std::size_t head = shift ? 4 : 0;
      if (enc.size() > head + 4 + 8) out.push_back(enc.substr(head, enc.size() - head - 4));
    }
  return out;
}

/// Where `haystack` (from `where`) contains a secret: raw or, for random tokens, any 16-character
/// piece of one (a truncated token in a log line is a leak too). Empty when clean.
std::vector<std::string> leaks(const std::string& where, const std::string& haystack,
                               const std::vector<known_secret>& secrets,
                               const std::set<std::string>& allowed = {}) {
  std::vector<std::string> found;
  for (const auto& s : secrets) {
    if (allowed.count(s.value)) continue;
    bool random_token = s.kind != "password" && s.kind != "client_secret";
    bool hit = haystack.find(s.value) != std::string::npos;
    if (!hit && random_token && s.value.size() >= 16)
      for (std::size_t i = 0; i + 16 <= s.value.size() && !hit; i += 4)
        hit = haystack.find(s.value.substr(i, 16)) != std::string::npos;
    if (hit) found.push_back(where + " contains a " + s.kind);
  }
  return found;
}

}  // namespace

TEST_CASE("no_secret_reaches_logs_api_answers_metrics_or_state_files_at_trace_level") {
  for (std::string format : {"text", "json"}) {
    CAPTURE(format);
    sim_fixture sim(sim_flags_for_broker(
        {"--access-token-ttl", "4s", "--app",
         std::string(test_username) + ":" + second_client_id + ":" + second_client_secret}));
    temp_dir extra;
    auto second_secret = extra.write("second-secret", second_client_secret);
    ::chmod(second_secret.c_str(), 0600);
    broker_options o;
    o.log_level = "trace";
    o.log_format = format;
    o.extra_credential = "\n[credential.second]\nprovider = \"privicore\"\napi_url = \"" +
                         sim.url() + "\"\nclient_id = \"" + second_client_id +
                         "\"\nclient_secret_file = \"" + second_secret + "\"\nusername = \"" +
                         test_username + "\"\npassword_file = \"" + extra.write("pw", test_password) +
                         "\"\nrefresh_margin = \"1s\"\n";
    ::chmod(extra.file("pw").c_str(), 0600);
    broker_fixture b(sim, o);

    std::vector<std::string> api_answers;  // bodies that must hold no secret at all
    struct token_answer {
      std::string credential, client_id, body;
    };
    std::vector<token_answer> token_answers;
    auto observe = [&] {
      for (const char* path : {"/v1/credentials", "/metrics", "/readyz", "/healthz"})
        api_answers.push_back(b.call("GET", path).body);
      for (auto [name, client] : {std::pair{"privicore", test_client_id},
                                  std::pair{"second", second_client_id}}) {
        auto r = b.call("GET", std::string("/v1/token/") + name);
        REQUIRE(r.status == 200);
        token_answers.push_back({name, client, r.body});
      }
    };

    // Grant (by the profile login), then refreshes with rotation, forced and scheduled.
    observe();
    for (int i = 0; i < 3; ++i) {
      auto r = b.call("POST", "/v1/credentials/privicore/refresh");
      REQUIRE(r.status == 200);
      api_answers.push_back(r.body);
    }
    // Failures on the way: an error answer and a malformed one, each logged at trace level.
    sim.fault({{"path", "/oauth-application/refresh-access-token"}, {"kind", "status"},
               {"status", 500}, {"count", 1}});
    api_answers.push_back(b.call("POST", "/v1/credentials/privicore/refresh").body);
    sim.fault({{"path", "/oauth-application/refresh-access-token"}, {"kind", "malformed"},
               {"count", 1}});
    api_answers.push_back(b.call("POST", "/v1/credentials/privicore/refresh").body);
    auto ok = b.call("POST", "/v1/credentials/privicore/refresh");
    REQUIRE(ok.status == 200);
    observe();

    // Logins through the API: a username and password, then a profile token from the simulator.
    auto login = b.call("POST", "/v1/credentials/privicore/login", {},
                        json{{"username", test_username}, {"password", test_password}}.dump());
    REQUIRE(login.status == 200);
    api_answers.push_back(login.body);
    auto session = sim.post_form("/profile/authenticate",
                                 {{"username", test_username}, {"password", test_password}});
    REQUIRE(session.status == 200);
    auto profile_token = session.json()["authorizationToken"].get<std::string>();
    login = b.call("POST", "/v1/credentials/second/login", {},
                   json{{"profile_token", profile_token}}.dump());
    REQUIRE(login.status == 200);
    api_answers.push_back(login.body);
    // A refused login echoes nothing of what was sent.
    auto bad = b.call("POST", "/v1/credentials/privicore/login", {},
                      json{{"username", test_username}, {"password", "wrong-password-value"}}.dump());
    CHECK(bad.status == 400);
    api_answers.push_back(bad.body);
    observe();

    // A scheduled refresh (4 s tokens), a restart on the persisted state, and a refresh after it.
    auto since = sim.stats()["refreshes"].get<int>();
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (sim.stats()["refreshes"].get<int>() == since && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(50ms);
    CHECK(sim.stats()["refreshes"].get<int>() > since);
    b.restart(SIGTERM);
    observe();
    REQUIRE(b.call("POST", "/v1/credentials/second/refresh").status == 200);
    observe();

    std::vector<known_secret> secrets;
    for (const auto& s : sim.secrets())
      secrets.push_back({s["kind"].get<std::string>(), s["value"].get<std::string>()});
    secrets.push_back({"password", "wrong-password-value"});
    std::set<std::string> kinds;
    for (const auto& s : secrets) kinds.insert(s.kind);
    // Every kind was issued or given, so every kind was looked for.
    for (const char* k : {"access_token", "refresh_token", "profile_token", "authorization_code",
                          "client_secret", "password"})
      CHECK_MESSAGE(kinds.count(k) == 1, k);
    CHECK(secrets.size() > 20);

    std::vector<std::string> found;
    auto add = [&](std::vector<std::string> more) {
      found.insert(found.end(), more.begin(), more.end());
    };
    std::size_t log_bytes = 0;
    for (const auto& e : std::filesystem::directory_iterator(b.dir().path())) {
      auto name = e.path().filename().string();
      if (name.starts_with("broker") && name.ends_with(".log")) {
        auto text = slurp(e.path());
        log_bytes += text.size();
        add(leaks(name, text, secrets));
      }
    }
    CHECK(log_bytes > 2000);  // the daemon did log, verbosely
    for (const auto& body : api_answers) add(leaks("an API answer", body, secrets));
    for (const auto& t : token_answers) {
      auto token = json::parse(t.body)["access_token"].get<std::string>();
      auto verdict = sim.check(token);
      CHECK_MESSAGE(verdict["client_id"] == t.client_id, "a token of another credential");
      CHECK(verdict["kind"] == "access");
      add(leaks("GET /v1/token/" + t.credential, t.body, secrets, {token}));
    }
    std::size_t state_files = 0;
    for (const auto& e : std::filesystem::directory_iterator(b.dir().file("state"))) {
      auto raw = slurp(e.path());
      ++state_files;
      for (const auto& s : secrets)
        for (const auto& form : encodings(s.value))
          if (raw.find(form) != std::string::npos)
            found.push_back(e.path().filename().string() + " holds a " + s.kind + " in clear");
    }
    CHECK(state_files >= 2);
    for (const auto& f : found) FAIL_CHECK(f);
    CHECK(found.empty());
  }
}
