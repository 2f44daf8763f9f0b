// What a credential holds: the current access token and what is needed to renew it.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "core/asio.hpp"
#include "core/secret.hpp"
#include "core/time.hpp"

namespace tokenbroker::broker {

struct token_bundle {
  secret access_token;
  std::string token_type = "Bearer";
  std::string scope;
  sys_seconds expires_at{};     // the provider's wall-clock expiry
  sys_seconds obtained_at{};    // wall-clock time of receipt
  secret refresh_token;         // empty when the grant has none (client_credentials)
  std::optional<sys_seconds> refresh_expires_at;
  std::string grant_id;         // identifies the grant (changes on re-grant), for persistence

  /// Seconds of validity left at `now` (negative once expired).
  std::chrono::seconds remaining(sys_seconds now) const { return expires_at - now; }
  bool has_refresh_token() const noexcept { return !refresh_token.empty(); }
};

}  // namespace tokenbroker::broker
