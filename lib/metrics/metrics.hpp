// Every metric the broker exports, declared in one place (INTERFACE.md "Metrics").
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tokenbroker::metrics {

class registry {
 public:
  registry();

  /// `token_requests_total{credential,result}`: result is ok, unavailable, forbidden, unknown.
  void token_request(const std::string& credential, std::string_view result);
  /// `refresh_total{credential,result}` and, for attempts that reached the provider,
  /// `refresh_duration_seconds{credential}`.
  void refresh(const std::string& credential, std::string_view result, double seconds);
  /// `token_expiry_timestamp_seconds{credential}`.
  void token_expiry(const std::string& credential, double unix_seconds);
  /// `credential_state{credential,state}`: 1 for `state`, 0 for the others.
  void credential_state(const std::string& credential, std::string_view state);
  /// `proxy_requests_total{credential,code}` and `proxy_duration_seconds{credential}`.
  void proxy_request(const std::string& credential, int code, double seconds);
  /// `upstream_errors_total{credential,kind}`.
  void upstream_error(const std::string& credential, std::string_view kind);
  /// `config_reloads_total{result}`: result is ok or error (the old config kept running).
  void config_reload(std::string_view result);

  /// `cluster_role{credential,role}`: 1 for `role` (holder, follower), 0 for the other.
  void cluster_role(const std::string& credential, std::string_view role);
  /// `cluster_lock_handovers_total{credential}`: this replica took over refreshing.
  void lock_handover(const std::string& credential);
  /// `cluster_etcd_up`: 1 while etcd answers.
  void etcd_up(bool up);

  /// Prometheus text exposition format of everything registered.
  std::string render() const;

 private:
  // Family::Add builds and hashes a label map under a lock: too dear for the token path, which
  // finds its counter here instead (series are never removed, so the pointers stay valid).
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using result_counters = std::vector<std::pair<std::string, prometheus::Counter*>>;
  std::mutex token_counters_mutex_;
  std::unordered_map<std::string, result_counters, name_hash, std::equal_to<>> token_counters_;
  struct proxy_counters {
    std::vector<std::pair<int, prometheus::Counter*>> by_code;
    prometheus::Histogram* duration = nullptr;
  };
  std::mutex proxy_counters_mutex_;
  std::unordered_map<std::string, proxy_counters, name_hash, std::equal_to<>> proxy_counters_;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& token_requests_;
  prometheus::Family<prometheus::Counter>& refreshes_;
  prometheus::Family<prometheus::Histogram>& refresh_duration_;
  prometheus::Family<prometheus::Gauge>& expiry_;
  prometheus::Family<prometheus::Gauge>& state_;
  prometheus::Family<prometheus::Counter>& proxy_requests_;
  prometheus::Family<prometheus::Histogram>& proxy_duration_;
  prometheus::Family<prometheus::Counter>& upstream_errors_;
  prometheus::Family<prometheus::Counter>& config_reloads_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Gauge>& cluster_role_;
  prometheus::Family<prometheus::Counter>& handovers_;
  prometheus::Family<prometheus::Gauge>& etcd_up_;
};

/// Every state a credential can be in, as exported (INTERFACE.md).
inline constexpr std::string_view credential_states[] = {"fresh",   "refreshing",  "stale",
                                                         "expired", "needs_grant", "error"};

/// The roles a replica plays for a shared credential (INTERFACE.md "Cluster").
inline constexpr std::string_view cluster_roles[] = {"holder", "follower"};

}  // namespace tokenbroker::metrics
