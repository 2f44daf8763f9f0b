// Every configured credential by name, with who may use it.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker/credential.hpp"

namespace tokenbroker::broker {

struct access_list {
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
  /// True when the list restricts anything at all.
  bool restricted() const noexcept { return !uids.empty() || !gids.empty(); }
};

/// One credential as served. Immutable once added: a reload puts a new entry (sharing the
/// credential) in its place, and a request holding the old one finishes with the old settings.
struct entry {
  std::shared_ptr<credential> cred;
  access_list access;
  std::string inject_header;
  std::string inject_format;
};

using entry_ptr = std::shared_ptr<const entry>;

class registry {
 public:
  /// Adds a credential, or replaces the entry of that name (requests holding it keep it).
  void put(std::string name, entry e);
  /// The entry named `name`, or nullptr. Hold the pointer across waits: a reload may replace
  /// or remove the entry meanwhile.
  entry_ptr find(std::string_view name) const;
  const std::map<std::string, entry_ptr, std::less<>>& all() const noexcept { return entries_; }

  /// Takes `name` out of service and stops its credential, which stays alive until its loop has
  /// ended and no request holds it (prune()).
  void retire(std::string_view name);
  /// A retired credential named `name` whose loop still runs, else nullptr.
  std::shared_ptr<credential> retiring(std::string_view name) const;
  /// Frees the retired credentials nothing uses any more.
  void prune();

  void start_all();
  /// Stops every credential, retired ones included.
  void stop_all();

 private:
  std::map<std::string, entry_ptr, std::less<>> entries_;
  std::vector<std::shared_ptr<credential>> retired_;
};

}  // namespace tokenbroker::broker
