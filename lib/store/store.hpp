// Where tokens live between restarts. The engine writes every change here before handing the
// new token to anyone; implementations: memory (no state_key_file), encrypted files, etcd.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "broker/token.hpp"
#include "core/asio.hpp"
#include "core/error.hpp"

namespace tokenbroker::store {

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
