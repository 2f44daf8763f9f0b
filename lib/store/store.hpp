// Where tokens live between restarts. The engine writes every change here before handing the
// new token to anyone; implementations: memory (no state_key_file), encrypted files, etcd.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "broker/token.hpp"
#include "core/asio.hpp"
#include "core/error.hpp"

namespace tokenbroker::store {

enum class lock_state { acquired, busy };
using update_handler =
    std::function<void(const std::string& credential, const broker::token_bundle& bundle)>;

class state_store {
 public:
  virtual ~state_store() = default;
  /// The saved bundle of `credential`; nullopt when none. An unreadable or tampered record is an
  /// error naming the problem (the caller decides: needs_grant for that credential only).
  virtual awaitable<result<std::optional<broker::token_bundle>>> load(const std::string& credential) = 0;
  /// Durably saves `bundle` (on return it survives a crash).
  virtual awaitable<result<void>> save(const std::string& credential,
                                       const broker::token_bundle& bundle) = 0;
  /// Removes the record (after the grant is gone for good).
  virtual awaitable<result<void>> erase(const std::string& credential) = 0;

  // Replicas sharing one store (etcd) must not refresh the same credential at once: the second
  // would present a refresh token the provider already replaced. A single-node store is not
  // shared, and its lock is always free.

  /// True when other replicas read and write the same records.
  virtual bool shared() const noexcept { return false; }
  /// Shared stores: whether the service behind them (etcd) answered the last request or watch.
  virtual bool backend_up() const noexcept { return true; }
  /// Takes `credential`'s refresh lock before a refresh, grant or login. `busy` when another
  /// replica holds it; an error when the lock cannot be asked for (etcd unreachable). While held,
  /// save() is fenced: it fails (errc::refused) once the lock was lost, never overwriting newer
  /// tokens.
  virtual awaitable<result<lock_state>> lock(const std::string& credential);
  /// Gives the lock back (best effort: an unreachable etcd lets it expire).
  virtual awaitable<void> unlock(const std::string& credential);
  /// Shared stores: `on_update` hears every record another replica saves (and, after a
  /// reconnect, the current records again), to adopt them. Call before start().
  virtual void subscribe(update_handler on_update);
  /// Shared stores: starts watching and keeping locks alive.
  virtual void start() {}
  /// Ends that background work; it is over once idle() (the io_context must run until then).
  virtual void stop() {}
  virtual bool idle() const noexcept { return true; }
};

/// Keeps tokens in memory only: a restart needs a new grant.
class memory_store final : public state_store {
 public:
  awaitable<result<std::optional<broker::token_bundle>>> load(const std::string& credential) override;
  awaitable<result<void>> save(const std::string& credential,
                               const broker::token_bundle& bundle) override;
  awaitable<result<void>> erase(const std::string& credential) override;

 private:
  std::map<std::string, broker::token_bundle> records_;
};

}  // namespace tokenbroker::store
