// privicore-sim configuration: start-up options (flags) and the switches that the admin API
// (PUT /_sim/config) may change at run time. Every switch has a CLI flag of the same name.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.hpp"

namespace tokenbroker::sim {

using json = nlohmann::json;
using std::chrono::milliseconds;

/// How a command id is written in a 202 body (PROTOCOL.md §3.1); rotate cycles through the three.
enum class id_shape { string, array, object, rotate };
/// Which methods /request-status/{id} answers (PROTOCOL.md §7.1 #10); the other gets 405.
enum class status_methods { get, post, both };

/// Behaviour switches; all changeable at run time.
struct switches {
  int refresh_status = 200;      // refresh-access-token: 200 with tokens, or 202 with empty body
  int reauthorize_status = 200;  // reauthorize-authorization-token: 200 new token, or 202 + id
  status_methods status_method = status_methods::both;
  id_shape command_id_shape = id_shape::string;
  id_shape status_shape = id_shape::string;  // request-status body: "x", ["x"], {command_status}
  milliseconds ack_delay{50};
  bool ack_before_response = false;   // push the WS ack before the 202 is written
  bool rotate_refresh = true;         // a new refresh token on every refresh; the old one dies
  bool invalidate_old_access = true;  // the replaced access token dies at once
  bool reuse_revokes_grant = false;   // presenting a rotated refresh token revokes the grant
  bool ws_pending = true;             // send command_status 1 before the final ack
  bool ws_noise = true;               // interleave {"type":"ping"} messages
  milliseconds ws_ping_interval{std::chrono::seconds{10}};
  milliseconds profile_token_ttl{std::chrono::hours{1}};
  milliseconds access_token_ttl{std::chrono::seconds{30}};
  milliseconds refresh_token_ttl{std::chrono::hours{1}};
  milliseconds code_ttl{std::chrono::seconds{60}};
};

/// Sets one switch by its config name ("refresh_mode", "ack_delay_ms", ...). Accepts JSON
/// strings for every kind ("202", "true", "2s") as well as native numbers and booleans.
/// Returns an error message naming the key on failure.
std::optional<std::string> set_switch(switches& sw, std::string_view name, const json& value);
/// Every switch under its config name, in the form GET /_sim/config returns.
json to_json(const switches& sw);

struct seed_profile {
  std::string username, password;
};
struct seed_app {
  std::string owner, client_id, client_secret;
};

/// Start-up options; immutable after parsing except `sw` (copied into the live context).
struct options {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 0;
  bool tls = false;
  std::string ca_out;  // where the generated CA certificate (PEM) is written when --tls
  log::level log_level = log::level::info;
  log::format log_format = log::format::text;
  std::size_t max_connections = 4096;
  milliseconds idle_timeout{std::chrono::seconds{30}};  // keep-alive wait for the next request
  milliseconds io_timeout{std::chrono::seconds{30}};    // each read/write of a request/response
  milliseconds hang_max{std::chrono::minutes{10}};      // upper bound of a "hang" fault
  std::size_t header_limit = 64 * 1024;
  std::size_t body_limit = 1024 * 1024;  // non-streaming endpoints
  std::vector<seed_profile> profiles;
  std::vector<seed_app> apps;
  std::vector<json> faults;
  switches sw;
};

/// Parses the command line. Throws std::invalid_argument with a message naming the flag.
/// Returns nullopt after printing usage for --help.
std::optional<options> parse_options(int argc, char** argv);

/// The --help text.
std::string usage();

}  // namespace tokenbroker::sim
