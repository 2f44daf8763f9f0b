// The local HTTP API (INTERFACE.md "Local HTTP API"), identical on the unix socket and TCP.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <variant>

#include "broker/registry.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "metrics/metrics.hpp"

namespace tokenbroker::app {

struct api_options {
  std::chrono::milliseconds token_wait{std::chrono::seconds{10}};  // bound on waiting callers
  uid_t daemon_uid = 0;  // the daemon's own user may use every credential (as may root)
  /// With [cluster]: whether etcd answers, shown in /v1/credentials. Empty without.
  std::function<bool()> etcd_up;
};

/// The body of a token answer (ends in a newline); `now` gives expires_in.
std::string token_json(const broker::token_view& t, sys_seconds now);

class api {
 public:
  api(broker::registry& reg, metrics::registry& metrics, api_options options);

  /// Guards (TCP header, Origin) and routing for one request.
  awaitable<http::response> handle(http::request& req, const http::peer_info& peer);
  /// handle()'s answer when it can be given at once: a token request whose credential holds a
  /// valid token, or is refused. Nothing when handle() must decide (other paths, waiting). The
  /// server tries this first: the common case then costs no coroutine frame (bench/analysis.md).
  http::quick_answer try_handle(const http::request_view& req, const http::peer_info& peer);
  /// The targets try_handle() may answer start with this (GET /v1/token/{name}).
  static constexpr std::string_view quick_prefix = "/v1/token/";

  /// The guards for a request header (origin-form only; on TCP no Origin and X-Token-Broker):
  /// the refusal to send, or nullopt to go on.
  static std::optional<http::response> guard(const http::request_view& h,
                                             const http::peer_info& peer);
  /// The credential `name` if the caller may use it, else the error response to send (both
  /// refusals are counted; a refused caller is logged with its uid).
  std::variant<broker::entry_ptr, http::response> authorize(std::string_view name,
                                                            const http::peer_info& peer,
                                                            unsigned version);
  /// Options a reload may change (token_wait).
  void set_options(api_options options) { options_ = std::move(options); }

 private:
  // GET /v1/token/{name}: a valid token for the caller.
  awaitable<http::response> handle_token(http::request_context& ctx);
  // GET /v1/credentials: status of every credential the caller may use.
  awaitable<http::response> handle_credentials(http::request_context& ctx);
  // POST /v1/credentials/{name}/refresh: one forced refresh, coalesced with any in flight.
  awaitable<http::response> handle_refresh(http::request_context& ctx);
  // POST /v1/credentials/{name}/login: an interactive grant (tokenbrokerctl login).
  awaitable<http::response> handle_login(http::request_context& ctx);
  // GET /healthz: the process serves.
  awaitable<http::response> handle_healthz(http::request_context& ctx);
  // GET /readyz: every credential holds a usable token.
  awaitable<http::response> handle_readyz(http::request_context& ctx);
  // GET /metrics: Prometheus text format.
  awaitable<http::response> handle_metrics(http::request_context& ctx);

  /// min_valid from a token request's query, or the 400 to send.
  static std::variant<std::chrono::seconds, http::response> min_valid_param(std::string_view query,
                                                                            unsigned version);
  /// authorize() for the {name} capture.
  std::variant<broker::entry_ptr, http::response> authorize(http::request_context& ctx);
  bool allowed(const broker::entry& e, const http::peer_info& peer) const;

  broker::registry& registry_;
  metrics::registry& metrics_;
  api_options options_;
  http::router router_;
};

/// A caller-facing error for a failed credential operation: 400 for a bad argument, else 503
/// `token_unavailable` with Retry-After.
http::response error_for(const error& e, unsigned version);

/// The JSON a caller sees for a credential's status (never a secret).
std::string status_json(const broker::credential_status& s);

}  // namespace tokenbroker::app
