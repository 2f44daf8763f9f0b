// A secret value (token, refresh token, client secret, password) that cannot be logged by mistake:
// formatting it prints a short fingerprint, and the value is only reachable through reveal().
#pragma once

#include <fmt/format.h>

#include <iosfwd>
#include <string>
#include <string_view>

namespace tokenbroker {

class secret {
 public:
  secret() = default;
  explicit secret(std::string value) : value_(std::move(value)) {}
  secret(const secret&) = default;
  secret(secret&&) noexcept = default;
  secret& operator=(const secret&);
  secret& operator=(secret&&) noexcept;
  ~secret();

  /// The raw value, for the wire and for encryption only. Grep for reveal() to audit uses.
  const std::string& reveal() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }
  /// "sha256:1a2b3c4d": identifies the value in logs without disclosing it. "none" when empty.
  std::string fingerprint() const;

  /// Constant-time comparison.
  friend bool operator==(const secret& a, const secret& b) noexcept;

 private:
  void wipe() noexcept;
  std::string value_;
};

std::ostream& operator<<(std::ostream& os, const secret& s);

/// Overwrites every byte `s` has held room for (its whole capacity, not just its size) and
/// empties it: for buffers that carried a secret on its way to the wire.
void wipe_bytes(std::string& s) noexcept;

/// A buffer, reused or not, that carries a secret on its way to the wire (a token answer, an
/// upstream request header with the injected token): wiped whole when it goes, however its
/// scope ends.
struct wiped_string {
  std::string bytes;
  wiped_string() = default;
  explicit wiped_string(std::string s) : bytes(std::move(s)) {}
  wiped_string(wiped_string&& other) noexcept : bytes(std::move(other.bytes)) {}
  wiped_string& operator=(wiped_string&&) = delete;
  ~wiped_string() { wipe_bytes(bytes); }  // a moved-from one wipes what the move left
};

}  // namespace tokenbroker

template <>
struct fmt::formatter<tokenbroker::secret> : fmt::formatter<std::string_view> {
  auto format(const tokenbroker::secret& s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format("<secret " + s.fingerprint() + ">", ctx);
  }
};
