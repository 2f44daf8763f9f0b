#include "oauth2/requests.hpp"

#include <doctest/doctest.h>

#include <set>

#include "http/form.hpp"

using namespace tokenbroker;
using namespace tokenbroker::oauth2;

namespace {

client_identity post_client() {
  return {"my-client", secret{"s3cret value"}, client_auth::client_secret_post};
}
client_identity basic_client() {
  return {"my client", secret{"p@ss:w+rd/="}, client_auth::client_secret_basic};
}

}  // namespace

TEST_CASE("refresh_request_with_client_secret_post_puts_credentials_last_in_the_body") {
  auto r = refresh_request(post_client(), secret{"rt/1+2"}, "openid offline_access");
  CHECK(r.body.reveal() ==
        "grant_type=refresh_token&refresh_token=rt%2F1%2B2&scope=openid%20offline_access"
        "&client_id=my-client&client_secret=s3cret%20value");
  CHECK(r.authorization.empty());
}

TEST_CASE("refresh_request_omits_an_empty_scope") {
  auto r = refresh_request(post_client(), secret{"rt"}, "");
  CHECK(r.body.reveal() ==
        "grant_type=refresh_token&refresh_token=rt&client_id=my-client&client_secret=s3cret%20value");
}

TEST_CASE("client_secret_basic_form_encodes_id_and_secret_before_base64") {
  // RFC 6749 §2.3.1: "my client" → "my+client", "p@ss:w+rd/=" → "p%40ss%3Aw%2Brd%2F%3D".
  auto r = client_credentials_request(basic_client(), "api:read");
  CHECK(r.body.reveal() == "grant_type=client_credentials&scope=api%3Aread");
  CHECK(r.authorization.reveal() ==
        "Basic bXkrY2xpZW50OnAlNDBzcyUzQXclMkJyZCUyRiUzRA==");  // base64("my+client:p%40ss%3Aw%2Brd%2F%3D")
}

TEST_CASE("basic_authorization_matches_a_known_value") {
  // base64("a:b") = "YTpi"
  CHECK(basic_authorization("a", secret{"b"}).reveal() == "Basic YTpi");
}

TEST_CASE("a_public_client_sends_only_its_client_id") {
  client_identity pub{"public-app", secret{}, client_auth::client_secret_basic};
  auto r = authorization_code_request(pub, secret{"the-code"}, "http://127.0.0.1:5555/callback",
                                      secret{"verifier"});
  CHECK(r.body.reveal() ==
        "grant_type=authorization_code&code=the-code"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&code_verifier=verifier"
        "&client_id=public-app");
  CHECK(r.authorization.empty());
}

TEST_CASE("authorization_code_request_with_basic_auth_leaves_client_id_out_of_the_body") {
  auto r = authorization_code_request(basic_client(), secret{"c"}, "http://127.0.0.1/cb",
                                      secret{"v"});
  CHECK(r.body.reveal() ==
        "grant_type=authorization_code&code=c&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"
        "&code_verifier=v");
  CHECK(r.authorization.reveal().starts_with("Basic "));
}

TEST_CASE("code_challenge_s256_matches_rfc7636_appendix_b") {
  CHECK(code_challenge_s256(secret{"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}) ==
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST_CASE("code_verifiers_are_43_unreserved_characters_and_never_repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    auto v = make_code_verifier();
    REQUIRE(v.reveal().size() == 43);
    for (char c : v.reveal())
      CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
    seen.insert(v.reveal());
  }
  CHECK(seen.size() == 64);
  CHECK(make_state() != make_state());
}

TEST_CASE("authorization_url_appends_every_parameter_to_an_existing_query") {
  auto ep = http::url::parse("https://login.example.com/tenant/authorize?p=B2C_1_signin").value();
  auto u = authorization_url(ep, "cid", "http://127.0.0.1:4000/callback", "openid offline_access",
                             "st4te", "ch4llenge");
  CHECK(u ==
        "https://login.example.com/tenant/authorize?p=B2C_1_signin&response_type=code"
        "&client_id=cid&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcallback"
        "&scope=openid%20offline_access&state=st4te&code_challenge=ch4llenge"
        "&code_challenge_method=S256");
}
