// deploy/grafana/tokenbroker.json against a running daemon: every metric and label the dashboard
// queries is one tokenbrokerd really exports, and every metric it exports is on the dashboard.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "broker_fixture.hpp"

using namespace tokenbroker::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Every PromQL expression in the dashboard: panel targets (rows included) and variable queries.
void collect_exprs(const json& panels, std::vector<std::string>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collect_exprs(p["panels"], out);
    for (const auto& t : p.value("targets", json::array())) out.push_back(t.at("expr"));
  }
}

struct scrape {
  std::map<std::string, std::string> families;  // name -> type, from "# TYPE" lines
  std::set<std::string> labels;                 // every label name on a sample
};

scrape parse_metrics(const std::string& text) {
  scrape s;
  std::istringstream in(text);
  std::string line;
  std::regex type_re(R"(^# TYPE (\S+) (\S+)$)"), label_re(R"(([a-zA-Z_][a-zA-Z0-9_]*)=")");
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, type_re)) {
      s.families[m[1]] = m[2];
    } else if (!line.starts_with("#")) {
      auto open = line.find('{'), close = line.rfind('}');
      if (open == std::string::npos || close == std::string::npos) continue;
      auto inner = line.substr(open, close - open);
      for (std::sregex_iterator it(inner.begin(), inner.end(), label_re), end; it != end; ++it)
        s.labels.insert((*it)[1]);
    }
  }
  return s;
}

}  // namespace

TEST_CASE("the_grafana_dashboard_queries_only_metrics_and_labels_the_daemon_exports") {
  std::ifstream f(std::string(TB_SOURCE_DIR) + "/deploy/grafana/tokenbroker.json");
  REQUIRE(f.good());
  json dash = json::parse(f);  // throws (and fails) on invalid JSON
  REQUIRE(dash.at("panels").is_array());
  std::vector<std::string> exprs;
  collect_exprs(dash["panels"], exprs);
  for (const auto& v : dash.at("templating").at("list"))
    if (v.contains("query") && v["query"].is_object()) exprs.push_back(v["query"].at("query"));
  REQUIRE(exprs.size() >= 10);

  std::set<int> ids;
  for (const auto& p : dash["panels"]) {
    CHECK_MESSAGE(ids.insert(p.at("id").get<int>()).second, "duplicate panel id ", p["id"]);
    CHECK(p.at("gridPos").at("w").get<int>() > 0);
    if (p["type"] != "row") CHECK_FALSE(p.at("targets").empty());
  }

  // A daemon with every metric family populated: tokens served, a refresh, proxied requests
  // (one answered, one failed upstream).
  sim_fixture sim(sim_flags_for_broker());
  broker_fixture b(sim);
  b.token();
  REQUIRE(b.call("POST", "/v1/credentials/privicore/refresh").status == 200);
  auto ok = b.call("GET", "/v1/proxy/privicore/data-token/echo");
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  sim.fault({{"path", "/data-token/echo"}, {"kind", "reset"}});
  CHECK(b.call("POST", "/v1/proxy/privicore/data-token/echo", {}, "x").status == 502);
  auto s = parse_metrics(b.call("GET", "/metrics").body);
  REQUIRE(s.families.size() >= 9);

  std::regex metric_re(R"(\btokenbroker_[a-z0-9_]+)"), by_re(R"(by \(([^)]*)\))");
  std::set<std::string> used;
  for (const auto& e : exprs) {
    CAPTURE(e);
    for (std::sregex_iterator it(e.begin(), e.end(), metric_re), end; it != end; ++it) {
      std::string name = it->str();
      // Histograms are queried through their _bucket/_sum/_count series.
      for (std::string suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
          auto base = name.substr(0, name.size() - suffix.size());
          if (s.families.count(base) && s.families[base] == "histogram") name = base;
        }
      }
      CHECK_MESSAGE(s.families.count(name), name, " is not exported by tokenbrokerd");
      used.insert(name);
    }
    for (std::sregex_iterator it(e.begin(), e.end(), by_re), end; it != end; ++it) {
      std::istringstream labels((*it)[1].str());
      for (std::string l; std::getline(labels, l, ',');) {
        l.erase(0, l.find_first_not_of(' '));
        l.erase(l.find_last_not_of(' ') + 1);
        // instance and job come from Prometheus's scrape, le from histograms.
        if (l == "instance" || l == "job") continue;
        CHECK_MESSAGE(s.labels.count(l), "label ", l, " is not exported by tokenbrokerd");
      }
    }
  }
  for (const auto& family : s.families) {
    const std::string& name = family.first;  // not a structured binding: CHECK captures it
    if (name.starts_with("tokenbroker_"))
      CHECK_MESSAGE(used.count(name), name, " is exported but not on the dashboard");
  }
}
