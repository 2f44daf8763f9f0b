#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace tokenbroker::metrics {
namespace {

prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace

registry::registry()
    : registry_(std::make_shared<prometheus::Registry>()),
      token_requests_(prometheus::BuildCounter()
                          .Name("tokenbroker_token_requests_total")
                          .Help("Token requests by credential and result")
                          .Register(*registry_)),
      refreshes_(prometheus::BuildCounter()
                     .Name("tokenbroker_refresh_total")
                     .Help("Refresh and grant attempts by credential and result")
                     .Register(*registry_)),
      refresh_duration_(prometheus::BuildHistogram()
                            .Name("tokenbroker_refresh_duration_seconds")
                            .Help("Time spent on refresh and grant calls to the provider")
                            .Register(*registry_)),
      expiry_(prometheus::BuildGauge()
                  .Name("tokenbroker_token_expiry_timestamp_seconds")
                  .Help("Unix time at which the current access token expires")
                  .Register(*registry_)),
      state_(prometheus::BuildGauge()
                 .Name("tokenbroker_credential_state")
                 .Help("1 for the credential's current state, 0 for the others")
                 .Register(*registry_)),
      proxy_requests_(prometheus::BuildCounter()
                          .Name("tokenbroker_proxy_requests_total")
                          .Help("Proxied requests by credential and status code")
                          .Register(*registry_)),
      proxy_duration_(prometheus::BuildHistogram()
                          .Name("tokenbroker_proxy_duration_seconds")
                          .Help("Time to answer proxied requests")
                          .Register(*registry_)),
      upstream_errors_(prometheus::BuildCounter()
                           .Name("tokenbroker_upstream_errors_total")
                           .Help("Failed upstream calls by credential and kind")
                           .Register(*registry_)),
      config_reloads_(prometheus::BuildCounter()
                          .Name("tokenbroker_config_reloads_total")
                          .Help("SIGHUP reloads by result (error: the running config was kept)")
                          .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("tokenbroker_build_info")
                      .Help("Build information")
                      .Register(*registry_)),
      cluster_role_(prometheus::BuildGauge()
                        .Name("tokenbroker_cluster_role")
                        .Help("1 for this replica's role for a shared credential: holder (it "
                              "refreshes) or follower (it adopts what the holder saves)")
                        .Register(*registry_)),
      handovers_(prometheus::BuildCounter()
                     .Name("tokenbroker_cluster_lock_handovers_total")
                     .Help("Times this replica took over refreshing a shared credential")
                     .Register(*registry_)),
      etcd_up_(prometheus::BuildGauge()
                   .Name("tokenbroker_cluster_etcd_up")
                   .Help("1 while etcd answers this replica")
                   .Register(*registry_)) {
  build_info_.Add({{"version", TOKENBROKER_VERSION}}).Set(1);
}

void registry::token_request(const std::string& credential, std::string_view result) {
  std::lock_guard lock(token_counters_mutex_);
  auto it = token_counters_.find(std::string_view(credential));
  if (it == token_counters_.end()) it = token_counters_.try_emplace(credential).first;
  for (auto& [r, counter] : it->second) {
    if (r == result) {
      counter->Increment();
      return;
    }
  }
  auto& counter =
      token_requests_.Add({{"credential", credential}, {"result", std::string(result)}});
  it->second.emplace_back(std::string(result), &counter);
  counter.Increment();
}

void registry::refresh(const std::string& credential, std::string_view result, double seconds) {
  refreshes_.Add({{"credential", credential}, {"result", std::string(result)}}).Increment();
  if (seconds >= 0) refresh_duration_.Add({{"credential", credential}}, latency_buckets()).Observe(seconds);
}

void registry::token_expiry(const std::string& credential, double unix_seconds) {
  expiry_.Add({{"credential", credential}}).Set(unix_seconds);
}

void registry::credential_state(const std::string& credential, std::string_view state) {
  for (auto s : credential_states)
    state_.Add({{"credential", credential}, {"state", std::string(s)}}).Set(s == state ? 1 : 0);
}

void registry::proxy_request(const std::string& credential, int code, double seconds) {
  // As token_request: Family::Add builds and hashes a label map under the family's lock on
  // every call, a tenth of a proxied call's user time; the counters found once are kept.
  std::lock_guard lock(proxy_counters_mutex_);
  auto it = proxy_counters_.find(std::string_view(credential));
  if (it == proxy_counters_.end()) {
    it = proxy_counters_.try_emplace(credential).first;
    it->second.duration =
        &proxy_duration_.Add({{"credential", credential}}, latency_buckets());
  }
  auto& c = it->second;
  prometheus::Counter* counter = nullptr;
  for (auto& [known, found] : c.by_code)
    if (known == code) counter = found;
  if (!counter) {
    counter = &proxy_requests_.Add({{"credential", credential}, {"code", std::to_string(code)}});
    c.by_code.emplace_back(code, counter);
  }
  counter->Increment();
  c.duration->Observe(seconds);
}

void registry::upstream_error(const std::string& credential, std::string_view kind) {
  upstream_errors_.Add({{"credential", credential}, {"kind", std::string(kind)}}).Increment();
}

void registry::cluster_role(const std::string& credential, std::string_view role) {
  for (auto r : cluster_roles)
    cluster_role_.Add({{"credential", credential}, {"role", std::string(r)}}).Set(r == role ? 1 : 0);
}

void registry::lock_handover(const std::string& credential) {
  handovers_.Add({{"credential", credential}}).Increment();
}

void registry::etcd_up(bool up) { etcd_up_.Add({}).Set(up ? 1 : 0); }

void registry::config_reload(std::string_view result) {
  config_reloads_.Add({{"result", std::string(result)}}).Increment();
}

std::string registry::render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace tokenbroker::metrics
