// The state behind etcd_client, shared by its unary calls (etcd_client.cpp) and its watch
// (etcd_watch.cpp). Private to lib/cluster.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "cluster/etcd_codec.hpp"

namespace tokenbroker::cluster {

using json = nlohmann::json;

/// Where a watch stands across its reconnects.
struct watch_state {
  std::int64_t next = 0;    // the first revision not yet delivered (0: from "now")
  bool need_resync = true;  // the caller must re-read once a watch is established
  std::string cluster_id;   // the cluster whose history `next` counts in
};

enum class stream_end {
  failed,         // could not establish (or etcd refused): try the next endpoint, back off
  broken,         // the stream ended or broke after it was established: reconnect
  compacted,      // etcd no longer has the revisions we need: restart from now and resync
  discontinuous,  // the history changed under us (another cluster, a rewound store): same
  token_refused,  // the auth token expired: authenticate again
  stopped,
};

struct stream_outcome {
  stream_end how = stream_end::failed;
  bool established = false;
  std::string why;
};

struct etcd_client::impl {
  impl(etcd_client& owner, net::any_io_executor ex, etcd_options options);

  etcd_client& owner;
  net::any_io_executor ex;
  etcd_options options;
  http::client http;
  std::size_t preferred = 0;  // the endpoint that answered last
  /// Per endpoint: the auth token it issued (simple tokens are per member, and die with it).
  /// nullopt: none yet; an empty secret: that etcd has authentication off.
  std::vector<std::optional<secret>> tokens;
  bool stopped = false;
  std::set<http::connection*> streams;    // open watch streams, closed by stop()
  std::set<net::steady_timer*> sleepers;  // watch backoff timers, cancelled by stop()
  std::mt19937_64 rng;

  bool auth() const noexcept { return !options.username.empty(); }
  void set_healthy(bool ok) noexcept { owner.healthy_ = ok; }
  error stopped_error() const { return make_error(errc::unavailable, "etcd client stopped"); }

  /// POSTs `body` to `path` on each endpoint in turn (the last one that answered first) and
  /// returns the first answer that etcd itself gave: its JSON, or its refusal as an error.
  /// errc::unavailable naming each endpoint's failure when none answered.
  awaitable<result<json>> call(std::string_view path, const json& body);
  /// One endpoint: authenticates if needed, and again once if etcd refuses the token.
  /// `reached` tells whether etcd answered at all (else: try the next endpoint).
  awaitable<result<json>> call_endpoint(std::size_t i, std::string_view path,
                                        const std::string& body, bool& reached);
  /// POST /v3/auth/authenticate on endpoint `i`; stores the token in tokens[i].
  awaitable<result<void>> authenticate(std::size_t i, bool& reached);
  /// The token to send to endpoint `i` (empty: none), authenticating first if there is none.
  /// Callers keep their copy: another request may replace tokens[i] meanwhile.
  awaitable<result<secret>> token_for(std::size_t i, bool& reached);
  /// Drops tokens[i] if it is still `used` (the one etcd just refused).
  void forget_token(std::size_t i, const secret& used);
  /// A POST of `body` to `path` on endpoint `i`, with `token` unless empty.
  http::request make_request(std::size_t i, std::string_view path, std::string body,
                             const secret& token) const;
  std::string endpoint_name(std::size_t i) const { return options.endpoints[i].origin(); }

  /// One watch stream on endpoint `i`, until it ends (etcd_watch.cpp).
  awaitable<stream_outcome> run_stream(std::size_t i, const std::string& prefix, watch_state& st,
                                       const std::function<void(const watch_event&)>& on_event,
                                       const std::function<void()>& on_resync);
  /// One message of a watch stream: an outcome when the stream must end, nullopt to go on.
  std::optional<stream_outcome> handle_message(
      http::connection& c, const std::string& line, watch_state& st, bool& established,
      const std::function<void(const watch_event&)>& on_event,
      const std::function<void()>& on_resync);
};

}  // namespace tokenbroker::cluster
