#include "privicore/types.hpp"

namespace tokenbroker::privicore {

std::string_view to_string(command_state s) noexcept {
  switch (s) {
    case command_state::pending: return "pending";
    case command_state::succeeded: return "succeeded";
    case command_state::rejected: return "rejected";
  }
  return "unknown";
}

}  // namespace tokenbroker::privicore
