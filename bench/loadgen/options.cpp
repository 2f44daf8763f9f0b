#include "loadgen/options.hpp"

#include <cstdio>
#include <string_view>

#include "core/time.hpp"

namespace tokenbroker::bench {
namespace {

constexpr const char* usage = R"(usage: loadgen [MODE] (--unix PATH | --tcp HOST:PORT) [options]
modes:
  load    closed-loop requests on every connection for --duration (default)
  storm   every connection connects and is answered once (reported apart: first_answer_*),
          then all run like load together, ending 1 s after the first token turnover (or
          at --duration); with --sim, counts the simulator's refreshes during the run
  idle    opens --connections, one request each, prints "ready N", holds them until SIGTERM
options:
  --get TARGET            a GET request (repeatable: connections cycle through requests)
  --post TARGET:BYTES     a POST with a BYTES-long body (repeatable)
  --header 'Name: value'  added to every request (repeatable)
  --connections N         concurrent keep-alive connections (default 1)
  --duration D            e.g. 5s, 1500ms (default 5s)
  --rate R                load: offer R requests/s in all, evenly spread over time and
                          connections (open loop); latency counts from when a request was due,
                          so a late answer delays the next request's latency too
  --verify                judge every token answer (well-formed, unexpired, never older)
  --sim URL               privicore-sim admin URL: refreshes seen, every distinct token checked
prints one JSON object with requests, rps, errors, latency percentiles (us) and token checks
)";

bool fail(const std::string& what) {
  std::fprintf(stderr, "loadgen: %s\n%s", what.c_str(), usage);
  return false;
}

}  // namespace

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  int i = 1;
  if (i < argc && argv[i][0] != '-') o.mode = argv[i++];
  if (o.mode != "load" && o.mode != "storm" && o.mode != "idle") {
    fail("unknown mode " + o.mode);
    return std::nullopt;
  }
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return std::nullopt;
    }
    if (a == "--verify") {
      o.verify = true;
      continue;
    }
    if (i + 1 >= argc) {
      fail("missing value for " + std::string(a));
      return std::nullopt;
    }
    std::string v = argv[++i];
    try {
      if (a == "--unix") {
        o.unix_path = v;
      } else if (a == "--tcp") {
        auto colon = v.rfind(':');
        if (colon == std::string::npos) throw std::invalid_argument("--tcp wants HOST:PORT");
        o.host = v.substr(0, colon);
        o.port = static_cast<unsigned short>(std::stoul(v.substr(colon + 1)));
      } else if (a == "--get") {
        o.requests.push_back({"GET", v, 0});
      } else if (a == "--post") {
        auto colon = v.rfind(':');
        if (colon == std::string::npos) throw std::invalid_argument("--post wants TARGET:BYTES");
        o.requests.push_back({"POST", v.substr(0, colon), std::stoul(v.substr(colon + 1))});
      } else if (a == "--header") {
        o.headers.push_back(v);
      } else if (a == "--connections") {
        o.connections = std::stoul(v);
      } else if (a == "--duration") {
        auto d = parse_duration(v);
        if (!d) throw std::invalid_argument("bad duration " + v);
        o.duration = *d;
      } else if (a == "--rate") {
        o.rate = std::stod(v);
        if (!(o.rate > 0)) throw std::invalid_argument("--rate must be above 0");
      } else if (a == "--sim") {
        o.sim_url = v;
      } else {
        throw std::invalid_argument("unknown option " + std::string(a));
      }
    } catch (const std::exception& e) {
      fail(e.what());
      return std::nullopt;
    }
  }
  if (o.unix_path.empty() == (o.port == 0)) {
    fail("give exactly one of --unix PATH and --tcp HOST:PORT");
    return std::nullopt;
  }
  if (o.requests.empty()) o.requests.push_back({"GET", "/healthz", 0});
  if (o.rate > 0 && o.mode != "load") {
    fail("--rate is for the load mode");
    return std::nullopt;
  }
  if (o.connections == 0) {
    fail("--connections must be at least 1");
    return std::nullopt;
  }
  return o;
}

}  // namespace tokenbroker::bench
