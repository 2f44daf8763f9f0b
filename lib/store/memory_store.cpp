#include "store/store.hpp"

namespace tokenbroker::store {

awaitable<result<std::optional<broker::token_bundle>>> memory_store::load(
    const std::string& credential) {
  auto it = records_.find(credential);
  if (it == records_.end()) co_return std::optional<broker::token_bundle>{};
  co_return std::optional<broker::token_bundle>{it->second};
}

awaitable<result<void>> memory_store::save(const std::string& credential,
                                           const broker::token_bundle& bundle) {
  records_[credential] = bundle;
  co_return result<void>{};
}

awaitable<result<void>> memory_store::erase(const std::string& credential) {
  records_.erase(credential);
  co_return result<void>{};
}

// The defaults of state_store: one replica, so the lock is always free.
awaitable<result<lock_state>> state_store::lock(const std::string&) {
  co_return lock_state::acquired;
}

awaitable<void> state_store::unlock(const std::string&) { co_return; }

void state_store::subscribe(update_handler) {}

}  // namespace tokenbroker::store
