// The proxy (INTERFACE.md `ANY /v1/proxy/{name}/{path}?{query}`): forwards a local call to the
// credential's api_url with the token injected, streaming both bodies.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "app/api.hpp"
#include "broker/registry.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/url.hpp"
#include "metrics/metrics.hpp"

namespace tokenbroker::app {

/// Where a credential's proxied calls go, and how.
struct proxy_target {
  http::url base;                    // the credential's api_url
  std::shared_ptr<http::client> client;  // its connection pool (its CAs, its TLS policy)
  std::chrono::milliseconds timeout{std::chrono::seconds{30}};  // upstream header wait, body idle
};

using proxy_targets = std::map<std::string, std::shared_ptr<const proxy_target>, std::less<>>;

struct proxy_options {
  std::chrono::milliseconds token_wait{std::chrono::seconds{10}};
  /// Request bodies up to this size are kept, so a 401 for the injected token can be retried.
  std::size_t retry_body_limit = 64 * 1024;
  /// Upstream answers to `Prefer: wait` are read whole up to this size.
  std::size_t command_body_limit = 64 * 1024;
  std::chrono::seconds max_wait{300};  // cap on Prefer: wait=N
  std::size_t chunk_size = 64 * 1024;  // streaming buffer, each direction
};

class proxy {
 public:
  /// `local_api` supplies the TCP guards and the per-credential authorization.
  proxy(api& local_api, broker::registry& reg, metrics::registry& metrics, proxy_targets targets,
        proxy_options options);

  /// A reload's targets and token_wait; requests in flight keep the target they started with.
  void reconfigure(proxy_targets targets, std::chrono::milliseconds token_wait);

  /// True for request-targets under /v1/proxy/: those are streamed, not read whole.
  static bool selects(const http::request_reader& h);
  /// Serves one proxied request.
  awaitable<http::stream_outcome> handle(http::streamed_request& sr);

  struct exchange;

 private:
  /// Checks the call, then relays it. One coroutine for both: a frame and a resumption fewer
  /// per call.
  template <class Stream>
  awaitable<http::stream_outcome> forward(Stream& client, http::streamed_request& sr);
  /// The answer to a `Prefer: wait` call once command `id` (accepted upstream with 202) has an
  /// outcome, or its wait ran out.
  awaitable<http::response> command_outcome(exchange& x, const std::string& id,
                                            std::uint64_t prepared, unsigned version);

  api& api_;
  broker::registry& registry_;
  metrics::registry& metrics_;
  proxy_targets targets_;
  proxy_options options_;
};

}  // namespace tokenbroker::app
