#include "cluster/etcd_store.hpp"

#include <nlohmann/json.hpp>

#include "cluster/etcd_codec.hpp"
#include "core/log.hpp"
#include "core/spawn.hpp"
#include "core/time.hpp"
#include "store/file_store.hpp"

namespace tokenbroker::cluster {
namespace {

using json = nlohmann::json;

constexpr std::string_view tokens_suffix = "/tokens";

}  // namespace

// Counts a background coroutine for idle() from its start to its end, however it ends.
struct task_count {
  explicit task_count(std::shared_ptr<int> n) : n_(std::move(n)) { ++*n_; }
  ~task_count() { --*n_; }
  task_count(const task_count&) = delete;
  task_count& operator=(const task_count&) = delete;
  std::shared_ptr<int> n_;
};

struct etcd_store::held_lock {
  explicit held_lock(net::any_io_executor ex, std::int64_t id) : lease(id), timer(ex) {}
  std::int64_t lease;
  bool released = false;
  net::steady_timer timer;
};

etcd_store::etcd_store(net::any_io_executor ex, std::unique_ptr<etcd_client> client, secret key,
                       etcd_store_options options, metrics::registry& metrics)
    : ex_(ex),
      client_(std::move(client)),
      key_(std::move(key)),
      options_(std::move(options)),
      metrics_(metrics),
      health_timer_(ex) {}

etcd_store::~etcd_store() { *alive_ = false; }

std::string etcd_store::tokens_key(const std::string& credential) const {
  return options_.prefix + "credentials/" + credential + std::string(tokens_suffix);
}

std::string etcd_store::lock_key(const std::string& credential) const {
  return options_.prefix + "credentials/" + credential + "/lock";
}

bool etcd_store::backend_up() const noexcept { return client_->healthy(); }

void etcd_store::note_health() { metrics_.etcd_up(backend_up()); }

result<broker::token_bundle> etcd_store::decode_record(const std::string& credential,
                                                       const std::string& value) const {
  auto doc = json::parse(value, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("v", 0) != 1 ||
      !doc.contains("sealed") || !doc["sealed"].is_string())
    return make_error(errc::malformed, "the record at " + tokens_key(credential) +
                                           " is not a tokenbroker record");
  auto sealed = codec::decode_bytes(doc["sealed"].get<std::string>());
  if (!sealed)
    return make_error(errc::malformed, "the record at " + tokens_key(credential) +
                                           " holds invalid base64");
  auto plain = store::open(key_, credential, *sealed);
  if (!plain)
    return make_error(errc::malformed, "the record at " + tokens_key(credential) + ": " +
                                           plain.error().message);
  return store::decode_bundle(*plain);
}

awaitable<result<std::optional<broker::token_bundle>>> etcd_store::load(
    const std::string& credential) {
  auto key = tokens_key(credential);
  auto r = co_await client_->get(key);
  note_health();
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<broker::token_bundle>{};
  auto b = decode_record(credential, (*r)->value);
  if (!b) co_return b.error();
  co_return std::optional<broker::token_bundle>{std::move(*b)};
}

awaitable<result<void>> etcd_store::save(const std::string& credential,
                                         const broker::token_bundle& bundle) {
  auto it = held_.find(credential);
  if (it == held_.end())
    co_return make_error(errc::invalid_argument,
                         "not holding the cluster lock of credential " + credential);
  auto held = it->second;
  json record{{"v", 1},
              {"by", options_.replica_id},
              {"at", format_timestamp(now_seconds())},
              {"sealed", codec::encode_bytes(store::seal(key_, credential, store::encode_bundle(bundle)))}};
  // The fence: the put happens only while the lock key still carries our lease.
  std::vector<compare> fence{{lock_key(credential), compare::target::lease, compare::op::equal,
                              held->lease, {}}};
  std::vector<txn_op> put{{txn_op::kind::put, tokens_key(credential), record.dump(), 0}};
  auto r = co_await client_->txn(std::move(fence), std::move(put));
  note_health();
  if (!r) co_return r.error();
  if (!r->succeeded)
    co_return make_error(errc::refused,
                         "lost the cluster lock of credential " + credential +
                             " (its lease expired); not overwriting tokens another replica may "
                             "have saved since");
  co_return result<void>{};
}

awaitable<result<void>> etcd_store::erase(const std::string& credential) {
  // Under our lock: fenced like a save. Otherwise (a reload that changed the grant): only while
  // no replica holds the lock, so a refresh in flight elsewhere is never undercut.
  auto it = held_.find(credential);
  std::vector<compare> fence;
  if (it != held_.end())
    fence.push_back({lock_key(credential), compare::target::lease, compare::op::equal,
                     it->second->lease, {}});
  else
    fence.push_back({lock_key(credential), compare::target::create_revision, compare::op::equal,
                     0, {}});
  std::vector<txn_op> del{{txn_op::kind::erase, tokens_key(credential), {}, 0}};
  auto r = co_await client_->txn(std::move(fence), std::move(del));
  note_health();
  if (!r) co_return r.error();
  if (!r->succeeded)
    co_return make_error(errc::refused, "another replica holds the cluster lock of credential " +
                                            credential);
  co_return result<void>{};
}

awaitable<result<store::lock_state>> etcd_store::lock(const std::string& credential) {
  if (held_.count(credential)) co_return store::lock_state::acquired;
  auto ttl = options_.lock_ttl;
  auto lease = co_await client_->lease_grant(ttl);
  note_health();
  if (!lease) co_return lease.error();
  auto key = lock_key(credential);
  std::vector<compare> absent{{key, compare::target::create_revision, compare::op::equal, 0, {}}};
  std::vector<txn_op> take{{txn_op::kind::put, key, options_.replica_id, *lease}};
  std::vector<txn_op> look{{txn_op::kind::get, key, {}, 0}};
  auto r = co_await client_->txn(std::move(absent), std::move(take), std::move(look));
  note_health();
  if (!r || !r->succeeded) {
    auto id = *lease;
    auto revoked = co_await client_->lease_revoke(id);  // best effort: it expires anyway
    (void)revoked;
    if (!r) co_return r.error();
    if (!r->gets.empty() && r->gets.front())
      log::debug("credential {}: the cluster lock is held by {}", credential,
                 r->gets.front()->value);
    co_return store::lock_state::busy;
  }
  auto held = std::make_shared<held_lock>(ex_, *lease);
  held_[credential] = held;
  spawn_logged(ex_, "etcd lease " + credential, keep_alive(credential, held));
  co_return store::lock_state::acquired;
}

awaitable<void> etcd_store::unlock(const std::string& credential) {
  auto it = held_.find(credential);
  if (it == held_.end()) co_return;
  auto held = it->second;
  held_.erase(it);
  held->released = true;
  held->timer.cancel();
  auto id = held->lease;
  // Revoking the lease deletes the lock key. If etcd cannot be reached, the lease expires on
  // its own after lock_ttl and the lock with it.
  auto r = co_await client_->lease_revoke(id);
  note_health();
  if (!r && r.error().code != errc::not_found)
    log::warn("credential {}: cannot release the cluster lock now ({}); it expires within {} s",
              credential, r.error().describe(), options_.lock_ttl.count());
}

awaitable<void> etcd_store::keep_alive(std::string credential, std::shared_ptr<held_lock> held) {
  task_count running(tasks_);
  auto alive = alive_;
  auto period = std::chrono::duration_cast<std::chrono::milliseconds>(options_.lock_ttl) / 3;
  while (*alive && !held->released) {
    held->timer.expires_after(period);
    co_await held->timer.async_wait(use_tuple);
    if (!*alive || held->released) co_return;
    auto id = held->lease;
    auto r = co_await client_->lease_keepalive(id);
    if (!*alive) co_return;
    note_health();
    if (!r && r.error().code == errc::not_found) {
      log::warn("credential {}: the cluster lock's lease expired while held; the next save is "
                "refused rather than overwrite newer tokens",
                credential);
      co_return;
    }
    if (!r)
      log::warn("credential {}: cannot keep the cluster lock alive: {}", credential,
                r.error().describe());
  }
}

void etcd_store::start() {
  if (started_) return;
  started_ = true;
  note_health();
  spawn_logged(ex_, "etcd watch", watch_loop());
  spawn_logged(ex_, "etcd health", health_loop());
}

void etcd_store::stop() {
  *alive_ = false;
  health_timer_.cancel();
  for (auto& [name, held] : held_) {
    held->released = true;
    held->timer.cancel();
  }
  client_->stop();
}

awaitable<void> etcd_store::watch_loop() {
  task_count running(tasks_);
  auto alive = alive_;
  auto prefix = options_.prefix + "credentials/";
  co_await client_->watch(
      prefix, 0, [this, alive](const watch_event& ev) {
        if (*alive) on_event(ev);
      },
      [this, alive] {
        if (*alive) spawn_logged(ex_, "etcd resync", resync());
      });
}

void etcd_store::on_event(const watch_event& ev) {
  note_health();
  if (ev.what == watch_event::kind::put) deliver(ev.record);
}

awaitable<void> etcd_store::resync() {
  task_count running(tasks_);
  auto alive = alive_;
  auto prefix = options_.prefix + "credentials/";
  auto records = co_await client_->get_prefix(prefix);
  if (!*alive) co_return;
  note_health();
  if (!records) {
    log::warn("cannot re-read the shared tokens from etcd: {}", records.error().describe());
    co_return;
  }
  for (const auto& r : *records) deliver(r);
}

void etcd_store::deliver(const kv& record) {
  auto base = options_.prefix + "credentials/";
  if (!record.key.starts_with(base) || !record.key.ends_with(tokens_suffix)) return;
  auto name = record.key.substr(base.size(), record.key.size() - base.size() - tokens_suffix.size());
  auto b = decode_record(name, record.value);
  if (!b) {
    log::warn("credential {}: ignoring an unreadable shared record (revision {}): {}", name,
              record.mod_revision, b.error().message);
    return;
  }
  if (on_update_) on_update_(name, *b);
}

awaitable<void> etcd_store::health_loop() {
  task_count running(tasks_);
  auto alive = alive_;
  bool was_up = true;
  while (*alive) {
    health_timer_.expires_after(options_.health_interval);
    co_await health_timer_.async_wait(use_tuple);
    if (!*alive) co_return;
    auto probe = options_.prefix + "health";
    auto r = co_await client_->get(probe);
    if (!*alive) co_return;
    note_health();
    if (!r && was_up) log::warn("etcd unreachable: {}", r.error().describe());
    if (r && !was_up) log::info("etcd reachable again");
    was_up = r.has_value();
  }
}

}  // namespace tokenbroker::cluster
