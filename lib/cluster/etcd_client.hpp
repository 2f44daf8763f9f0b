// etcd v3 through its JSON gateway (the HTTP/1.1 + JSON face of etcd's gRPC API, etcd 3.4 and
// later), spoken by our own HTTP client: key-value reads and transactions, leases, and watches.
// Keys and values travel base64-encoded, 64-bit numbers as JSON strings; both are handled here,
// so callers see plain strings and integers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/asio.hpp"
#include "core/error.hpp"
#include "core/secret.hpp"
#include "http/client.hpp"
#include "http/url.hpp"

namespace tokenbroker::cluster {

struct etcd_options {
  /// Endpoints (http:// or https://), tried in order; a request that cannot reach one endpoint
  /// moves on to the next, and the last one that answered is tried first next time.
  std::vector<http::url> endpoints;
  std::string username;  // etcd authentication (empty: none)
  secret password;
  std::string ca_file;    // extra trusted CAs for https endpoints
  std::string cert_file;  // client certificate (PEM) for etcd's client-cert auth; empty: none
  std::string key_file;   // its private key (PEM)
  bool verify_tls = true; // false is honoured for loopback endpoints only
  std::chrono::milliseconds timeout{std::chrono::seconds{3}};  // per request, per endpoint
};

/// One key-value record as etcd stores it.
struct kv {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

/// One condition of a transaction (etcd's Compare).
struct compare {
  enum class target { version, create_revision, mod_revision, value, lease };
  enum class op { equal, not_equal, greater, less };
  std::string key;
  target what = target::version;
  op how = op::equal;
  std::int64_t number = 0;  // for version, create_revision, mod_revision, lease
  std::string value;        // for value
};

/// One operation of a transaction branch.
struct txn_op {
  enum class kind { put, erase, get };
  kind what = kind::put;
  std::string key;
  std::string value;       // put
  std::int64_t lease = 0;  // put: attach to this lease (0: none)
};

struct txn_result {
  bool succeeded = false;     // the compares held and the success branch ran
  std::int64_t revision = 0;  // the store's revision after the transaction
  /// For each get in the branch that ran, in order: the record, or nullopt when absent.
  std::vector<std::optional<kv>> gets;
};

struct watch_event {
  enum class kind { put, erase };
  kind what = kind::put;
  kv record;  // for erase: key and mod_revision only
};

class etcd_client {
 public:
  /// Throws std::runtime_error when a CA, certificate or key file cannot be loaded.
  etcd_client(net::any_io_executor ex, etcd_options options);
  ~etcd_client();

  /// The record at `key`, or nullopt when there is none. Errors: errc::unavailable when no
  /// endpoint answered (with each endpoint's failure in the message), errc::unauthorized when
  /// the username/password are refused, errc::malformed for an answer we cannot read.
  awaitable<result<std::optional<kv>>> get(const std::string& key);
  /// Every record whose key starts with `prefix`.
  awaitable<result<std::vector<kv>>> get_prefix(const std::string& prefix);
  /// Puts `value` at `key` (attached to `lease` when non-zero); returns the new revision.
  awaitable<result<std::int64_t>> put(const std::string& key, const std::string& value,
                                      std::int64_t lease = 0);
  /// Runs `success` when every compare holds, else `failure`, atomically.
  awaitable<result<txn_result>> txn(std::vector<compare> compares, std::vector<txn_op> success,
                                    std::vector<txn_op> failure = {});

  /// A new lease living `ttl` unless kept alive; returns its id.
  awaitable<result<std::int64_t>> lease_grant(std::chrono::seconds ttl);
  /// Renews the lease for its full TTL; returns that TTL. errc::not_found when the lease has
  /// expired or was revoked.
  awaitable<result<std::chrono::seconds>> lease_keepalive(std::int64_t id);
  /// Ends the lease now: every key attached to it is deleted.
  awaitable<result<void>> lease_revoke(std::int64_t id);

  /// Watches every key starting with `prefix`, calling `on_event` for each change, until stop()
  /// (then it returns). Events come in revision order, each exactly once: after a broken stream
  /// it reconnects (with backoff, over the endpoints) and resumes after the last revision seen.
  /// When etcd has compacted past that revision, or on the first connect, `on_resync` is called
  /// once the watch is established so the caller re-reads the prefix (nothing is missed).
  /// `start_revision` 0 means "from now".
  awaitable<void> watch(std::string prefix, std::int64_t start_revision,
                        std::function<void(const watch_event&)> on_event,
                        std::function<void()> on_resync);

  /// True while the last request or watch to etcd succeeded (for metrics and status).
  bool healthy() const noexcept { return healthy_; }
  /// Ends watches and refuses new requests (errc::unavailable).
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  bool healthy_ = false;
};

/// The smallest key greater than every key starting with `prefix` (etcd's range_end for a prefix).
std::string prefix_end(std::string prefix);

}  // namespace tokenbroker::cluster
