#include "broker/registry.hpp"

namespace tokenbroker::broker {

entry& registry::add(std::string name, entry e) {
  return entries_.insert_or_assign(std::move(name), std::move(e)).first->second;
}

entry* registry::find(std::string_view name) {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

void registry::start_all() {
  for (auto& [name, e] : entries_) e.cred->start();
}

void registry::stop_all() {
  for (auto& [name, e] : entries_) e.cred->stop();
}

}  // namespace tokenbroker::broker
