#include "options.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <stdexcept>

#include "core/time.hpp"

namespace tokenbroker::sim {
namespace {

const char* const bool_switches[] = {
    "ack_before_response", "rotate_refresh", "invalidate_old_access",
    "reuse_revokes_grant", "ws_pending",     "ws_noise"};

bool is_bool_switch(std::string_view name) {
  return std::find(std::begin(bool_switches), std::end(bool_switches), name) !=
         std::end(bool_switches);
}

std::optional<bool> to_bool(const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<long long>() != 0;
  if (!v.is_string()) return std::nullopt;
  auto s = v.get<std::string>();
  if (s == "true" || s == "1" || s == "on" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "off" || s == "no") return false;
  return std::nullopt;
}

// Numbers are `bare_unit`s (seconds for TTLs, milliseconds for ack delays); strings are
// durations as in core/time.hpp, except that a bare string number also uses `bare_unit`.
std::optional<milliseconds> to_duration(const json& v, milliseconds bare_unit) {
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<long long>() >= 0))
    return bare_unit * v.get<long long>();
  if (!v.is_string()) return std::nullopt;
  auto s = v.get<std::string>();
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return bare_unit * std::stoll(s);
  return parse_duration(s);
}

std::optional<int> to_status(const json& v, int a, int b) {
  int n = 0;
  if (v.is_number_integer())
    n = v.get<int>();
  else if (v.is_string())
    n = std::atoi(v.get<std::string>().c_str());
  if (n == a || n == b) return n;
  return std::nullopt;
}

std::optional<id_shape> to_shape(const json& v) {
  if (!v.is_string()) return std::nullopt;
  auto s = v.get<std::string>();
  if (s == "string") return id_shape::string;
  if (s == "array") return id_shape::array;
  if (s == "object") return id_shape::object;
  if (s == "rotate") return id_shape::rotate;
  return std::nullopt;
}

std::string_view name_of(id_shape s) {
  switch (s) {
    case id_shape::string:
      return "string";
    case id_shape::array:
      return "array";
    case id_shape::object:
      return "object";
    case id_shape::rotate:
      return "rotate";
  }
  return "?";
}

std::string format_duration(milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

std::uint64_t to_count(std::string_view flag, const std::string& v) {
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size())
    throw std::invalid_argument(fmt::format("{}: expected a number, got '{}'", flag, v));
  return n;
}

milliseconds to_flag_duration(std::string_view flag, const std::string& v) {
  auto d = parse_duration(v);
  if (!d)
    throw std::invalid_argument(fmt::format("{}: expected a duration like 30s, got '{}'", flag, v));
  return *d;
}

std::vector<std::string> split(const std::string& s, char sep, std::size_t max_parts) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (out.size() + 1 < max_parts) {
    auto pos = s.find(sep, start);
    if (pos == std::string::npos) break;
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
  out.push_back(s.substr(start));
  return out;
}

}  // namespace

std::optional<std::string> set_switch(switches& sw, std::string_view name, const json& v) {
  auto bad = [&](std::string_view expected) {
    return fmt::format("{}: expected {}, got {}", name, expected, v.dump());
  };
  if (name == "refresh_mode") {
    auto s = to_status(v, 200, 202);
    if (!s) return bad("\"200\" or \"202\"");
    sw.refresh_status = *s;
  } else if (name == "reauthorize_mode") {
    auto s = to_status(v, 200, 202);
    if (!s) return bad("\"200\" or \"202\"");
    sw.reauthorize_status = *s;
  } else if (name == "status_method") {
    auto s = v.is_string() ? v.get<std::string>() : std::string{};
    if (s == "get")
      sw.status_method = status_methods::get;
    else if (s == "post")
      sw.status_method = status_methods::post;
    else if (s == "both")
      sw.status_method = status_methods::both;
    else
      return bad("get|post|both");
  } else if (name == "command_id_shape" || name == "status_shape") {
    auto s = to_shape(v);
    if (!s) return bad("string|array|object|rotate");
    (name == "status_shape" ? sw.status_shape : sw.command_id_shape) = *s;
  } else if (name == "ack_delay_ms" || name == "ack_delay") {
    auto d = to_duration(v, milliseconds{1});
    if (!d) return bad("milliseconds or a duration");
    sw.ack_delay = *d;
  } else if (is_bool_switch(name)) {
    auto b = to_bool(v);
    if (!b) return bad("a boolean");
    if (name == "ack_before_response")
      sw.ack_before_response = *b;
    else if (name == "rotate_refresh")
      sw.rotate_refresh = *b;
    else if (name == "invalidate_old_access")
      sw.invalidate_old_access = *b;
    else if (name == "reuse_revokes_grant")
      sw.reuse_revokes_grant = *b;
    else if (name == "ws_pending")
      sw.ws_pending = *b;
    else
      sw.ws_noise = *b;
  } else if (name == "ws_ping_interval" || name == "profile_token_ttl" ||
             name == "access_token_ttl" || name == "refresh_token_ttl" || name == "code_ttl") {
    auto d = to_duration(v, std::chrono::seconds{1});
    if (!d || d->count() == 0) return bad("a positive duration such as \"30s\"");
    if (name == "ws_ping_interval")
      sw.ws_ping_interval = *d;
    else if (name == "profile_token_ttl")
      sw.profile_token_ttl = *d;
    else if (name == "access_token_ttl")
      sw.access_token_ttl = *d;
    else if (name == "refresh_token_ttl")
      sw.refresh_token_ttl = *d;
    else
      sw.code_ttl = *d;
  } else {
    return fmt::format("{}: unknown switch", name);
  }
  return std::nullopt;
}

json to_json(const switches& sw) {
  auto method = sw.status_method == status_methods::get    ? "get"
                : sw.status_method == status_methods::post ? "post"
                                                           : "both";
  return json{{"refresh_mode", std::to_string(sw.refresh_status)},
              {"reauthorize_mode", std::to_string(sw.reauthorize_status)},
              {"status_method", method},
              {"command_id_shape", name_of(sw.command_id_shape)},
              {"status_shape", name_of(sw.status_shape)},
              {"ack_delay_ms", sw.ack_delay.count()},
              {"ack_before_response", sw.ack_before_response},
              {"rotate_refresh", sw.rotate_refresh},
              {"invalidate_old_access", sw.invalidate_old_access},
              {"reuse_revokes_grant", sw.reuse_revokes_grant},
              {"ws_pending", sw.ws_pending},
              {"ws_noise", sw.ws_noise},
              {"ws_ping_interval", format_duration(sw.ws_ping_interval)},
              {"profile_token_ttl", format_duration(sw.profile_token_ttl)},
              {"access_token_ttl", format_duration(sw.access_token_ttl)},
              {"refresh_token_ttl", format_duration(sw.refresh_token_ttl)},
              {"code_ttl", format_duration(sw.code_ttl)}};
}

std::optional<options> parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage();
      return std::nullopt;
    }
    if (!arg.starts_with("--")) throw std::invalid_argument("unexpected argument '" + arg + "'");
    std::string flag = arg, value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    std::string name = flag.substr(2);
    std::replace(name.begin(), name.end(), '-', '_');
    // Boolean switches and --tls: "--x", "--x=false", "--x false", "--no-x". A following
    // argument is taken as the value only if it is a boolean word.
    if ((name == "tls" || is_bool_switch(name)) && !has_value && i + 1 < argc &&
        to_bool(json(std::string(argv[i + 1])))) {
      value = argv[++i];
      has_value = true;
    }
    if (name == "tls") {
      auto b = has_value ? to_bool(json(value)) : std::optional<bool>(true);
      if (!b) throw std::invalid_argument("--tls: expected a boolean, got '" + value + "'");
      o.tls = *b;
      continue;
    }
    if (name.starts_with("no_") && is_bool_switch(name.substr(3)) && !has_value) {
      set_switch(o.sw, name.substr(3), false);
      continue;
    }
    if (is_bool_switch(name)) {
      if (auto err = set_switch(o.sw, name, has_value ? json(value) : json(true)))
        throw std::invalid_argument("--" + *err);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw std::invalid_argument(flag + ": missing value");
      value = argv[++i];
    }
    if (name == "listen") {
      auto colon = value.rfind(':');
      if (colon == std::string::npos) throw std::invalid_argument("--listen: expected HOST:PORT");
      o.listen_host = value.substr(0, colon);
      auto port = to_count(flag, value.substr(colon + 1));
      if (port > 65535) throw std::invalid_argument("--listen: port out of range");
      o.listen_port = static_cast<std::uint16_t>(port);
    } else if (name == "ca_out") {
      o.ca_out = value;
    } else if (name == "log_level") {
      auto l = log::parse_level(value);
      if (!l) throw std::invalid_argument("--log-level: expected trace|debug|info|warn|error|off");
      o.log_level = *l;
    } else if (name == "log_format") {
      auto f = log::parse_format(value);
      if (!f) throw std::invalid_argument("--log-format: expected text|json");
      o.log_format = *f;
    } else if (name == "max_connections") {
      o.max_connections = to_count(flag, value);
    } else if (name == "idle_timeout") {
      o.idle_timeout = to_flag_duration(flag, value);
    } else if (name == "io_timeout") {
      o.io_timeout = to_flag_duration(flag, value);
    } else if (name == "hang_max") {
      o.hang_max = to_flag_duration(flag, value);
    } else if (name == "header_limit") {
      o.header_limit = to_count(flag, value);
    } else if (name == "body_limit") {
      o.body_limit = to_count(flag, value);
    } else if (name == "profile") {
      auto parts = split(value, ':', 2);
      if (parts.size() != 2 || parts[0].empty())
        throw std::invalid_argument("--profile: expected USER:PASSWORD");
      o.profiles.push_back({parts[0], parts[1]});
    } else if (name == "app") {
      auto parts = split(value, ':', 3);
      if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[2].empty())
        throw std::invalid_argument("--app: expected OWNERUSER:CLIENT_ID:CLIENT_SECRET");
      o.apps.push_back({parts[0], parts[1], parts[2]});
    } else if (name == "fault") {
      auto j = json::parse(value, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        throw std::invalid_argument("--fault: expected a JSON object, got '" + value + "'");
      o.faults.push_back(std::move(j));
    } else if (name == "config") {
      auto j = json::parse(value, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        throw std::invalid_argument("--config: expected a JSON object");
      for (auto& [k, v] : j.items())
        if (auto err = set_switch(o.sw, k, v)) throw std::invalid_argument("--config: " + *err);
    } else if (auto err = set_switch(o.sw, name, json(value))) {
      throw std::invalid_argument("--" + *err);
    }
  }
  if (o.tls && o.ca_out.empty()) log::warn("--tls without --ca-out: clients cannot verify us");
  return o;
}

std::string usage() {
  return R"(privicore-sim: a stateful simulator of the Privicore API (see README.md)

  --listen HOST:PORT        listen address (default 127.0.0.1:0 = a free port)
  --tls                     serve https/wss with a freshly generated CA + server certificate
  --ca-out FILE             write the CA certificate (PEM) there
  --log-level L             trace|debug|info|warn|error|off (default info)
  --log-format F            text|json
  --max-connections N       concurrent connections (default 4096)
  --idle-timeout D          keep-alive idle wait (default 30s)
  --io-timeout D            per read/write deadline (default 30s)
  --hang-max D              longest a "hang" fault holds a socket (default 10m)
  --header-limit BYTES      request header limit (default 65536)
  --body-limit BYTES        body limit of non-streaming endpoints (default 1048576)
  --profile USER:PASSWORD   seed a profile (repeatable)
  --app OWNER:CLIENT_ID:CLIENT_SECRET   seed an OAuth application (repeatable)
  --fault JSON              install a fault, same object as POST /_sim/faults (repeatable)
  --config JSON             apply switches, same object as PUT /_sim/config
Switches (also via PUT /_sim/config):
  --refresh-mode 200|202    --reauthorize-mode 200|202
  --status-method get|post|both           --status-shape string|array|object|rotate
  --command-id-shape string|array|object|rotate
  --ack-delay MS            --ack-before-response[=BOOL]
  --rotate-refresh[=BOOL]   --invalidate-old-access[=BOOL]   --reuse-revokes-grant[=BOOL]
  --ws-pending[=BOOL]       --ws-noise[=BOOL]      --ws-ping-interval D
  --profile-token-ttl D     --access-token-ttl D   --refresh-token-ttl D   --code-ttl D
  (--no-X sets a boolean switch X to false)
)";
}

}  // namespace tokenbroker::sim
