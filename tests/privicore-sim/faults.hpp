// Injected faults: per path (or "*" for every non-admin path), for the next N requests or until
// cleared. Pure bookkeeping; the session carries them out (server/session.cpp).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tokenbroker::sim {

enum class fault_kind { status, retry_after, hang, reset, malformed, slow_body };

struct fault {
  std::string path = "*";
  fault_kind kind = fault_kind::status;
  unsigned status = 503;                    // status, retry_after (429 or 503)
  unsigned retry_after = 1;                 // seconds, retry_after
  int count = -1;                           // remaining matches; -1 until cleared
  std::chrono::milliseconds interval{200};  // slow_body: delay between body bytes
  bool after = false;  // run the handler first (its effects happen), then misbehave
};

/// "status", "retry_after", ... as in the JSON form.
const char* to_string(fault_kind k) noexcept;

class fault_table {
 public:
  /// Adds a fault from its JSON form (POST /_sim/faults); an error message when invalid.
  std::optional<std::string> add(const nlohmann::json& j);
  void clear() { faults_.clear(); }
  /// The fault for this request, if any, consuming one count. Exact paths win over "*".
  std::optional<fault> take(std::string_view path);
  nlohmann::json to_json() const;

 private:
  std::vector<fault> faults_;
};

}  // namespace tokenbroker::sim
