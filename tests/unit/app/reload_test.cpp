#include "app/reload.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker;
using namespace tokenbroker::app;

namespace {

config::credential_config privicore() {
  config::credential_config c;
  c.name = "p";
  c.provider = config::provider_kind::privicore;
  c.api_url = http::url::parse("https://api.example:9009").value();
  c.client_id = "client";
  c.client_secret = secret{"s1"};
  c.username = "grantor";
  c.password = secret{"pw1"};
  return c;
}

}  // namespace

TEST_CASE("unchanged_settings_need_nothing") {
  auto c = compare(privicore(), privicore());
  CHECK_FALSE(c.any());
  CHECK_FALSE(c.new_grant);
  CHECK_FALSE(c.new_provider);
  CHECK_FALSE(c.new_client);
}

TEST_CASE("rotated_secrets_rebuild_the_provider_and_keep_the_grant") {
  auto now = privicore();
  now.client_secret = secret{"s2"};
  now.password = secret{"pw2"};
  auto c = compare(privicore(), now);
  CHECK(c.keys == std::vector<std::string>{"client_secret", "password"});
  CHECK(c.new_provider);
  CHECK_FALSE(c.new_grant);
  CHECK_FALSE(c.new_client);
}

TEST_CASE("grant_identity_keys_mean_a_new_grant") {
  for (auto change :
       {+[](config::credential_config& c) { c.client_id = "other"; },
        +[](config::credential_config& c) { c.username = "someone"; },
        +[](config::credential_config& c) { c.scopes = {"read"}; },
        +[](config::credential_config& c) {
          c.api_url = http::url::parse("https://elsewhere:9009").value();
        },
        +[](config::credential_config& c) { c.provider = config::provider_kind::oauth2; }}) {
    auto now = privicore();
    change(now);
    auto c = compare(privicore(), now);
    CHECK(c.new_grant);
    CHECK(c.new_provider);
  }
}

TEST_CASE("an_oauth2_api_url_is_only_the_proxy_target") {
  auto was = privicore();
  was.provider = config::provider_kind::oauth2;
  was.token_url = http::url::parse("https://idp.example/token").value();
  auto now = was;
  now.api_url = http::url::parse("https://api2.example").value();
  auto c = compare(was, now);
  CHECK(c.keys == std::vector<std::string>{"api_url"});
  CHECK_FALSE(c.new_provider);
  CHECK_FALSE(c.new_grant);
  now = was;
  now.token_url = http::url::parse("https://idp2.example/token").value();
  CHECK(compare(was, now).new_grant);
}

TEST_CASE("tls_settings_need_a_new_connection_pool_and_served_settings_nothing_more") {
  auto now = privicore();
  now.ca_file = "/etc/ssl/other.pem";
  auto c = compare(privicore(), now);
  CHECK(c.new_client);
  CHECK(c.new_provider);
  CHECK_FALSE(c.new_grant);

  now = privicore();
  now.allow_uids = {1000};
  now.inject_header = "X-Other";
  now.refresh_margin = std::chrono::seconds{90};
  c = compare(privicore(), now);
  CHECK(c.keys == std::vector<std::string>{"refresh_margin", "inject_header", "allow_uids"});
  CHECK_FALSE(c.new_provider);
  CHECK_FALSE(c.new_client);
  CHECK_FALSE(c.new_grant);
}

TEST_CASE("listeners_state_and_max_connections_wait_for_a_restart_token_wait_does_not") {
  config::config was;
  auto now = was;
  now.server.socket = "/run/other.sock";
  now.server.listen_host = "127.0.0.1";
  now.server.listen_port = 8780;
  now.server.state_dir = "/tmp/state";
  now.server.max_connections = 10;
  now.server.token_wait = std::chrono::seconds{3};
  CHECK(restart_only_changes(was, now) == std::vector<std::string>{"server.socket", "server.listen",
                                                                   "server.state_dir",
                                                                   "server.max_connections"});
  auto applied = applied_server(was.server, now.server);
  CHECK(applied.socket == was.server.socket);
  CHECK(applied.max_connections == was.server.max_connections);
  CHECK(applied.token_wait == std::chrono::seconds{3});
}
