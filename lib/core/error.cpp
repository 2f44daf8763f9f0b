#include "core/error.hpp"

namespace tokenbroker {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::transport: return "transport";
    case errc::timeout: return "timeout";
    case errc::tls: return "tls";
    case errc::http_status: return "http_status";
    case errc::malformed: return "malformed";
    case errc::rejected: return "rejected";
    case errc::invalid_argument: return "invalid_argument";
    case errc::not_found: return "not_found";
    case errc::unavailable: return "unavailable";
    case errc::unauthorized: return "unauthorized";
    case errc::io: return "io";
    case errc::refused: return "refused";
  }
  return "unknown";
}

std::string error::describe() const {
  std::string out{to_string(code)};
  // Appended piece by piece: `" " + std::to_string(...)` draws a GCC 12 -Wrestrict false
  // positive at -O2.
  if (code == errc::http_status) {
    out += ' ';
    out += std::to_string(status);
  }
  if (!message.empty()) {
    out += ": ";
    out += message;
  }
  return out;
}

error make_error(errc code, std::string message) { return error{code, 0, std::move(message), {}}; }

error make_http_error(int status, std::string message, std::chrono::seconds retry_after) {
  return error{errc::http_status, status, std::move(message), retry_after};
}

error_exception::error_exception(error e) : std::runtime_error(e.describe()), error_(std::move(e)) {}

void throw_exception_from_error(const error& e, const boost::source_location&) {
  throw error_exception(e);
}

}  // namespace tokenbroker
