// The state store of replicas that share their credentials: records in etcd, encrypted exactly
// like the file store (AES-256-GCM under the state key, the credential's name as associated
// data), plus the per-credential refresh lock that keeps two replicas from refreshing at once.
//
// Keys, under the configured prefix P:
//   P credentials/NAME/tokens  {"v":1,"by":REPLICA,"at":RFC3339,"sealed":BASE64}
//   P credentials/NAME/lock    REPLICA, attached to the holder's lease
// The lock is taken by a transaction that creates the lock key only if absent, on a fresh lease
// kept alive while the refresh is in flight; every save compares the lock key's lease with ours
// in the same transaction (the fence), so a replica whose lease expired never overwrites the
// tokens of the replica that took over.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "cluster/etcd_client.hpp"
#include "core/secret.hpp"
#include "metrics/metrics.hpp"
#include "store/store.hpp"

namespace tokenbroker::cluster {

struct etcd_store_options {
  std::string prefix = "/tokenbroker/";  // ends with '/'
  std::string replica_id;                // written next to every record this replica saves
  std::chrono::seconds lock_ttl{10};
  std::chrono::milliseconds health_interval{std::chrono::seconds{5}};
};

class etcd_store final : public store::state_store {
 public:
  etcd_store(net::any_io_executor ex, std::unique_ptr<etcd_client> client, secret key,
             etcd_store_options options, metrics::registry& metrics);
  ~etcd_store() override;

  awaitable<result<std::optional<broker::token_bundle>>> load(const std::string& credential) override;
  awaitable<result<void>> save(const std::string& credential,
                               const broker::token_bundle& bundle) override;
  awaitable<result<void>> erase(const std::string& credential) override;

  bool shared() const noexcept override { return true; }
  bool backend_up() const noexcept override;
  awaitable<result<store::lock_state>> lock(const std::string& credential) override;
  awaitable<void> unlock(const std::string& credential) override;
  void subscribe(store::update_handler on_update) override { on_update_ = std::move(on_update); }
  void start() override;
  void stop() override;
  bool idle() const noexcept override { return *tasks_ == 0; }

  std::string tokens_key(const std::string& credential) const;
  std::string lock_key(const std::string& credential) const;

 private:
  struct held_lock;

  awaitable<void> keep_alive(std::string credential, std::shared_ptr<held_lock> held);
  awaitable<void> watch_loop();
  awaitable<void> health_loop();
  void on_event(const watch_event& ev);
  awaitable<void> resync();
  void deliver(const kv& record);
  result<broker::token_bundle> decode_record(const std::string& credential,
                                             const std::string& value) const;
  void note_health();

  net::any_io_executor ex_;
  std::unique_ptr<etcd_client> client_;
  secret key_;
  etcd_store_options options_;
  metrics::registry& metrics_;
  store::update_handler on_update_;
  std::map<std::string, std::shared_ptr<held_lock>> held_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  net::steady_timer health_timer_;
  bool started_ = false;
  // Background coroutines still running (watch, re-reads, health probe, lease keepers).
  std::shared_ptr<int> tasks_ = std::make_shared<int>(0);
};

}  // namespace tokenbroker::cluster
