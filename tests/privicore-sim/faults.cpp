#include "faults.hpp"

namespace tokenbroker::sim {
namespace {

constexpr std::pair<fault_kind, const char*> kind_names[] = {
    {fault_kind::status, "status"},       {fault_kind::retry_after, "retry_after"},
    {fault_kind::hang, "hang"},           {fault_kind::reset, "reset"},
    {fault_kind::malformed, "malformed"}, {fault_kind::slow_body, "slow_body"}};

}  // namespace

const char* to_string(fault_kind k) noexcept {
  for (auto [kind, name] : kind_names)
    if (kind == k) return name;
  return "?";
}

std::optional<std::string> fault_table::add(const nlohmann::json& j) {
  if (!j.is_object()) return "a fault must be a JSON object";
  fault f;
  try {
    f.path = j.value("path", std::string("*"));
    if (f.path != "*" && !f.path.starts_with("/")) return "path must be \"*\" or start with '/'";
    if (f.path.starts_with("/_sim/")) return "admin paths cannot carry faults";
    auto kind = j.value("kind", std::string{});
    bool found = false;
    for (auto [k, name] : kind_names) {
      if (kind != name) continue;
      f.kind = k;
      found = true;
    }
    if (!found) return "kind must be status|retry_after|hang|reset|malformed|slow_body";
    if (f.kind == fault_kind::retry_after) f.status = 429;
    f.status = j.value("status", f.status);
    if (f.status < 100 || f.status > 599) return "status must be 100..599";
    if (f.kind == fault_kind::retry_after && f.status != 429 && f.status != 503)
      return "retry_after needs status 429 or 503";
    f.retry_after = j.value("retry_after", f.retry_after);
    f.count = j.value("count", -1);
    if (f.count == 0 || f.count < -1) return "count must be positive (or absent: until cleared)";
    f.interval = std::chrono::milliseconds{j.value("interval_ms", 200)};
    f.after = j.value("after", false);
  } catch (const nlohmann::json::exception& e) {
    return std::string("bad field type: ") + e.what();
  }
  faults_.push_back(std::move(f));
  return std::nullopt;
}

std::optional<fault> fault_table::take(std::string_view path) {
  auto pick = [&](auto pred) -> std::optional<fault> {
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (!pred(*it)) continue;
      fault f = *it;
      if (it->count > 0 && --it->count == 0) faults_.erase(it);
      return f;
    }
    return std::nullopt;
  };
  if (auto f = pick([&](const fault& x) { return x.path == path; })) return f;
  return pick([](const fault& x) { return x.path == "*"; });
}

nlohmann::json fault_table::to_json() const {
  auto out = nlohmann::json::array();
  for (const auto& f : faults_) {
    out.push_back({{"path", f.path},
                   {"kind", to_string(f.kind)},
                   {"status", f.status},
                   {"retry_after", f.retry_after},
                   {"count", f.count},
                   {"interval_ms", f.interval.count()},
                   {"after", f.after}});
  }
  return out;
}

}  // namespace tokenbroker::sim
