#include "app/providers.hpp"

#include <stdexcept>

#include "oauth2/provider.hpp"
#include "privicore/broker_provider.hpp"

namespace tokenbroker::app {

std::unique_ptr<broker::provider> make_provider(net::any_io_executor ex,
                                                const config::credential_config& cfg,
                                                http::client& http) {
  switch (cfg.provider) {
    case config::provider_kind::privicore:
      return std::make_unique<privicore::broker_provider>(std::move(ex), cfg, http);
    case config::provider_kind::oauth2:
      return std::make_unique<oauth2::provider>(std::move(ex), cfg, http);
  }
  throw std::logic_error("credential " + cfg.name + ": unknown provider kind");
}

}  // namespace tokenbroker::app
