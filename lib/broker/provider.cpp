#include "broker/provider.hpp"

namespace tokenbroker::broker {

failure_class classify(const error& e) {
  switch (e.code) {
    case errc::transport:
    case errc::timeout:
    case errc::tls:
    case errc::unavailable:
    case errc::malformed:  // a garbled answer (proxy error page, truncated body) is transient
      return failure_class::retry;
    case errc::unauthorized:
      return failure_class::grant_dead;
    case errc::http_status:
      if (e.status == 401) return failure_class::grant_dead;
      if (e.status == 408 || e.status == 429 || e.status >= 500) return failure_class::retry;
      return failure_class::fatal;
    default:
      return failure_class::fatal;
  }
}

awaitable<std::uint64_t> provider::prepare_command(steady_clock::time_point) { co_return 0; }

awaitable<result<command_result>> provider::await_command(std::string, std::uint64_t,
                                                          steady_clock::time_point) {
  co_return make_error(errc::unavailable, "this provider has no asynchronous commands");
}

}  // namespace tokenbroker::broker
