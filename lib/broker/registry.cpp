#include "broker/registry.hpp"

#include <algorithm>

namespace tokenbroker::broker {

void registry::put(std::string name, entry e) {
  entries_.insert_or_assign(std::move(name), std::make_shared<const entry>(std::move(e)));
}

entry_ptr registry::find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second;
}

void registry::retire(std::string_view name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  auto cred = it->second->cred;
  entries_.erase(it);
  cred->stop();
  retired_.push_back(std::move(cred));
}

std::shared_ptr<credential> registry::retiring(std::string_view name) const {
  for (const auto& c : retired_)
    if (c->name() == name && c->running()) return c;
  return nullptr;
}

void registry::prune() {
  std::erase_if(retired_, [](const auto& c) { return !c->running() && c.use_count() == 1; });
}

void registry::start_all() {
  for (auto& [name, e] : entries_) e->cred->start();
}

void registry::stop_all() {
  for (auto& [name, e] : entries_) e->cred->stop();
  for (auto& c : retired_) c->stop();
}

}  // namespace tokenbroker::broker
