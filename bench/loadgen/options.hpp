// loadgen's command line.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tokenbroker::bench {

/// One request a connection sends; a connection cycles through all of them (mixed workloads).
struct request_spec {
  std::string method = "GET";
  std::string target;
  std::size_t body_bytes = 0;
};

struct options {
  std::string mode = "load";  // load | storm | idle
  std::string unix_path;      // either this, or host:port
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::vector<request_spec> requests;
  std::vector<std::string> headers;  // "Name: value"
  std::size_t connections = 1;
  std::chrono::milliseconds duration{std::chrono::seconds{5}};
  double rate = 0;           // load: requests per second offered in all (open loop); 0: closed
  bool verify = false;       // judge every token answer
  std::string sim_url;       // privicore-sim: count refreshes, check every distinct token
  std::uint64_t max_body = 8 * 1024 * 1024;
};

/// Parses argv; prints usage or the problem to stderr and returns nullopt when it is wrong.
std::optional<options> parse_options(int argc, char** argv);

}  // namespace tokenbroker::bench
