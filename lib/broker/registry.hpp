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

struct entry {
  std::unique_ptr<credential> cred;
  access_list access;
  std::string api_url;  // proxy target ("" when none)
  std::string inject_header;
  std::string inject_format;
};

class registry {
 public:
  /// Adds a credential (names are unique; the config guarantees it).
  entry& add(std::string name, entry e);
  /// The entry named `name`, or nullptr.
  entry* find(std::string_view name);
  std::map<std::string, entry, std::less<>>& all() noexcept { return entries_; }

  void start_all();
  void stop_all();

 private:
  std::map<std::string, entry, std::less<>> entries_;
};

}  // namespace tokenbroker::broker
