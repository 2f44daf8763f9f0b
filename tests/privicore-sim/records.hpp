// The simulator's records and counters: tokens, commands, applications, issued values, and
// expected failures as values. Pure data.
#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tokenbroker::sim {

using time_point = std::chrono::system_clock::time_point;
using clock_fn = std::function<time_point()>;

/// An expected failure of a Privicore call: the HTTP status and a stable error key.
struct failure {
  int status = 400;
  std::string error;  // e.g. "oauth.already_retrieved"
  std::string message;
};
template <class T>
using outcome = boost::system::result<T, failure>;
// Found by ADL from outcome<T>::value(); only reached by bugs.
[[noreturn]] void throw_exception_from_error(const failure& f, const boost::source_location& loc);

enum class token_kind { profile, access, refresh };
enum class token_state { active, superseded, revoked };

struct token_record {
  token_kind kind = token_kind::profile;
  token_state state = token_state::active;
  std::string profile;    // owner of a profile token; grantor of OAuth tokens
  std::string grant_id;   // OAuth tokens only
  std::string client_id;  // OAuth tokens only
  time_point expires_at;
};

enum class command_kind { register_profile, register_app, request_code, reauthorize, data };
/// PROTOCOL.md §3.4 numbering.
enum class command_status { started = 1, succeeded = 2, rejected = 3 };

struct command {
  std::string id;
  command_kind kind = command_kind::data;
  std::string profile;  // whose WebSocket channel receives the ack
  command_status status = command_status::started;
  command_status planned = command_status::succeeded;  // decided at submission
  bool never = false;                                  // never completes
  std::string body;                                    // reason/message in the ack
  std::string subject;  // register_profile: username; reauthorize: the token
  std::chrono::milliseconds ttl{};
};

struct application {
  std::string id, owner, name, redirect_uri, client_id, client_secret;
  std::vector<std::string> scopes;
  time_point created;
  bool ready = false;      // register ack done
  bool retrieved = false;  // configuration handed out (single use, PROTOCOL.md §5.8)
};

struct profile_token_issue {
  std::string token;
  time_point expires_at;
};
struct code_issue {
  std::string client_id, nonce, code;
  time_point expires_at;
};
struct oauth_token_issue {
  std::string client_id, access, refresh;
  time_point expires_at, refresh_expires_at;
};

/// Every counter GET /_sim/stats reports.
struct counters {
  std::uint64_t authentications = 0, authentication_failures = 0, grants = 0, refreshes = 0,
                refresh_rejected = 0, rejected_tokens = 0, codes_issued = 0, acks_sent = 0,
                ws_connections = 0, ws_open = 0, commands = 0, faults_applied = 0, connections = 0,
                open_connections = 0;
  std::map<std::string, std::uint64_t, std::less<>> requests;
};

}  // namespace tokenbroker::sim
