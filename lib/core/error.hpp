// Expected failures travel as values: result<T> carries either T or an error with a reason.
#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <string>
#include <string_view>

namespace tokenbroker {

/// What went wrong, coarse enough to decide on retry or give-up.
enum class errc {
  transport = 1,     // connect, read or write failed; retryable
  timeout,           // a deadline passed; retryable
  tls,               // handshake or certificate verification failed
  http_status,       // the peer answered with an unexpected status (see error::status)
  malformed,         // the peer's answer could not be understood
  rejected,          // an asynchronous command finished as rejected/failed
  invalid_argument,  // the caller asked for something unusable
  not_found,         // the named thing does not exist
  unavailable,       // no usable value right now (e.g. no valid token); retry later
  unauthorized,      // credentials or token refused
  io,                // local file system error
  refused,           // the peer refused our client or request as invalid (OAuth2 invalid_client,
                     // unauthorized_client, ...): retrying the same request cannot help
};

/// Short, stable name of an errc ("transport", "timeout", ...), used in logs and metrics labels.
std::string_view to_string(errc code) noexcept;

/// An expected failure. `message` is for a person and never holds a secret.
struct error {
  errc code{errc::transport};
  int status = 0;                       // HTTP status, when code == errc::http_status
  std::string message;                  // what happened, including the peer's own words if any
  std::chrono::seconds retry_after{0};  // from a Retry-After header, 0 when none

  /// "timeout: connect to 127.0.0.1:9 took longer than 5s"
  std::string describe() const;
};

error make_error(errc code, std::string message);
error make_http_error(int status, std::string message, std::chrono::seconds retry_after = {});

template <class T>
using result = boost::system::result<T, error>;

/// Thrown by result<T>::value() on an error; bugs only, expected paths test has_value() first.
class error_exception : public std::runtime_error {
 public:
  explicit error_exception(error e);
  const error& get() const noexcept { return error_; }

 private:
  error error_;
};

// Found by ADL from boost::system::result<T, error>::value().
[[noreturn]] void throw_exception_from_error(const error& e, const boost::source_location& loc);

}  // namespace tokenbroker
