// What a SIGHUP reload must do (INTERFACE.md "Reload"): pure comparisons of the running
// configuration with the new one, so the rules are tested without a daemon.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace tokenbroker::app {

/// How one credential's settings changed.
struct credential_change {
  std::vector<std::string> keys;  // every changed key, for the log (never a value)
  /// A grant-identity key changed: the held tokens belong to another grant; drop them and
  /// grant again.
  bool new_grant = false;
  /// ca_file or tls_skip_verify changed: a new connection pool.
  bool new_client = false;
  /// Something the provider was built from changed (secrets, endpoint options): a new provider,
  /// swapped in between attempts; the tokens are kept unless new_grant.
  bool new_provider = false;

  bool any() const noexcept { return !keys.empty(); }
};

/// Compares the settings of one credential, running (`was`) and new (`now`).
credential_change compare(const config::credential_config& was,
                          const config::credential_config& now);

/// The keys that differ and take effect only at a restart: [server] listeners, state storage
/// and max_connections, and [cluster].
std::vector<std::string> restart_only_changes(const config::config& was, const config::config& now);

/// `now` with the restart-only keys of `was`: the [server] settings a reload actually runs with.
config::server_config applied_server(const config::server_config& was,
                                     const config::server_config& now);

}  // namespace tokenbroker::app
