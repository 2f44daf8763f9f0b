// Builds the provider for a configured credential.
#pragma once

#include <memory>

#include "broker/provider.hpp"
#include "config/config.hpp"
#include "http/client.hpp"

namespace tokenbroker::app {

/// The token endpoint for `cfg` (Privicore or RFC 6749). `http` must outlive the provider.
std::unique_ptr<broker::provider> make_provider(net::any_io_executor ex,
                                                const config::credential_config& cfg,
                                                http::client& http);

}  // namespace tokenbroker::app
