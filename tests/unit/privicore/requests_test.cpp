#include "privicore/requests.hpp"

#include <doctest/doctest.h>

using namespace tokenbroker;
using namespace tokenbroker::privicore;
using namespace std::chrono_literals;

namespace {

http::url api() { return http::url::parse("https://h:9009/base").value(); }

// The value of a header, or "<none>" when absent.
std::string header(const http::request& r, std::string_view name) {
  auto it = r.find(name);
  return it == r.end() ? "<none>" : std::string(it->value());
}

const secret profile{"prof-token-1"};
const client_credentials creds{"cid-1", secret{"s3cret"}};

void check_form_post(const http::request& r, std::string_view target, std::string_view body) {
  CHECK(r.method() == http::verb::post);
  CHECK(r.target() == target);
  CHECK(r.version() == 11);
  CHECK(header(r, "Accept") == "application/json");
  CHECK(header(r, "Content-Type") == "application/x-www-form-urlencoded");
  CHECK(r.body() == body);
  CHECK(header(r, "Content-Length") == std::to_string(body.size()));
}

void check_get(const http::request& r, std::string_view target) {
  CHECK(r.method() == http::verb::get);
  CHECK(r.target() == target);
  CHECK(header(r, "Accept") == "application/json");
  CHECK(header(r, "Content-Type") == "<none>");
  CHECK(r.body().empty());
}

}  // namespace

TEST_CASE("health_is_an_unauthenticated_get_under_the_base_path") {
  auto r = build_health(api());
  check_get(r, "/base/health");
  CHECK(header(r, "Authorization") == "<none>");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "<none>");
  CHECK(header(r, "User-Agent").starts_with("tokenbroker/"));
}

TEST_CASE("targets_join_the_base_path_with_or_without_trailing_slash_or_base") {
  CHECK(build_health(http::url::parse("http://127.0.0.1:8009").value()).target() == "/health");
  CHECK(build_health(http::url::parse("https://h/base/").value()).target() == "/base/health");
}

TEST_CASE("authenticate_posts_username_and_password_form_without_auth_header") {
  auto r = build_authenticate(api(), "alice@example.com", secret{"p&ss w=rd"});
  check_form_post(r, "/base/profile/authenticate",
                  "username=alice%40example.com&password=p%26ss%20w%3Drd");
  CHECK(header(r, "Authorization") == "<none>");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "<none>");
}

TEST_CASE("token_expiry_posts_an_empty_form_with_the_raw_profile_token") {
  auto r = build_token_expiry(api(), profile);
  check_form_post(r, "/base/profile/authorization-token/expiry", "");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
  CHECK(header(r, "Authorization") == "<none>");
}

TEST_CASE("reauthorize_posts_ttl_in_seconds_with_the_profile_token") {
  auto r = build_reauthorize(api(), profile, 24h);
  check_form_post(r, "/base/profile/reauthorize-authorization-token", "ttl=86400");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
}

TEST_CASE("revoke_posts_an_empty_form_with_the_token_being_revoked") {
  auto r = build_revoke(api(), profile);
  check_form_post(r, "/base/profile/revoke-authorization-token", "");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
}

TEST_CASE("register_application_sends_name_redirect_uri_and_comma_joined_scopes") {
  auto r = build_register_application(api(), profile, "My App", "https://app.example.com/cb",
                                      {"data-token:read", "data-token:write"});
  check_form_post(r, "/base/profile/oauth-application-register",
                  "name=My%20App&redirectUri=https%3A%2F%2Fapp.example.com%2Fcb"
                  "&scopes=data-token%3Aread%2Cdata-token%3Awrite");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
}

TEST_CASE("retrieve_configuration_posts_application_id_with_the_owner_token") {
  auto r = build_retrieve_configuration(api(), profile, "app-1");
  check_form_post(r, "/base/profile/retrieve-oauth-application-configuration",
                  "applicationId=app-1");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
}

TEST_CASE("request_authorization_code_is_a_get_with_client_id_nonce_and_repeated_scope_array") {
  auto r = build_request_authorization_code(api(), profile, "cid-1", "n0nce-_x",
                                            {"all", "data-token:read"});
  check_get(r,
            "/base/profile/oauth-application-request-authorization-code"
            "?client_id=cid-1&nonce=n0nce-_x&scope%5B%5D=all&scope%5B%5D=data-token%3Aread");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
  CHECK(header(r, "Authorization") == "<none>");
}

TEST_CASE("retrieve_authorization_code_sends_basic_base64_client_credentials_and_id_nonce") {
  auto r = build_retrieve_authorization_code(api(), creds, "req-1", "n0nce");
  check_form_post(r, "/base/oauth-application/retrieve-authorization-code", "id=req-1&nonce=n0nce");
  CHECK(header(r, "Authorization") == "Basic Y2lkLTE6czNjcmV0");  // base64("cid-1:s3cret")
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "<none>");
}

TEST_CASE("obtain_access_token_sends_basic_client_credentials_and_authorization_code_field") {
  auto r = build_obtain_access_token(api(), creds, secret{"code/1+2"});
  check_form_post(r, "/base/oauth-application/obtain-access-token",
                  "authorization_code=code%2F1%2B2");
  CHECK(header(r, "Authorization") == "Basic Y2lkLTE6czNjcmV0");
}

TEST_CASE("refresh_sends_raw_access_token_as_basic_not_base64") {
  auto r = build_refresh_access_token(api(), secret{"at-raw.token"}, secret{"rt-1"});
  check_form_post(r, "/base/oauth-application/refresh-access-token", "refresh_token=rt-1");
  CHECK(header(r, "Authorization") == "Basic at-raw.token");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "<none>");
}

TEST_CASE("list_applications_is_a_get_with_the_profile_token") {
  auto r = build_list_applications(api(), profile);
  check_get(r, "/base/profile/retrieve-oauth-application-list");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
}

TEST_CASE("application_scope_posts_a_form_or_gets_a_query_with_the_raw_access_token") {
  auto post = build_application_scope(api(), secret{"at-1"}, "app-1", http::verb::post);
  check_form_post(post, "/base/oauth-application/retrieve-oauth-application-scope",
                  "applicationId=app-1");
  CHECK(header(post, "Authorization") == "Basic at-1");

  auto bare = build_application_scope(api(), secret{"at-1"}, std::nullopt, http::verb::post);
  check_form_post(bare, "/base/oauth-application/retrieve-oauth-application-scope", "");

  auto get = build_application_scope(api(), secret{"at-1"}, "app-1", http::verb::get);
  check_get(get, "/base/oauth-application/retrieve-oauth-application-scope?applicationId=app-1");
  CHECK(header(get, "Authorization") == "Basic at-1");
}

TEST_CASE("command_status_get_has_no_body_and_sends_the_profile_token") {
  auto r = build_command_status(api(), "cmd-1", &profile, http::verb::get);
  check_get(r, "/base/request-status/cmd-1");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
  CHECK(header(r, "Content-Length") == "<none>");
}

TEST_CASE("command_status_post_sends_json_empty_object") {
  auto r = build_command_status(api(), "cmd-1", &profile, http::verb::post);
  CHECK(r.method() == http::verb::post);
  CHECK(r.target() == "/base/request-status/cmd-1");
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "Accept") == "application/json");
  CHECK(r.body() == "{}");
  CHECK(header(r, "Content-Length") == "2");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "prof-token-1");
}

TEST_CASE("command_status_without_profile_omits_the_header_and_encodes_the_id") {
  auto r = build_command_status(api(), "a b/c", nullptr, http::verb::get);
  CHECK(r.target() == "/base/request-status/a%20b%2Fc");
  CHECK(header(r, "X-DPT-AUTHORIZATION") == "<none>");
}
