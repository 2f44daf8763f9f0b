// RFC 6749 token-endpoint requests and the RFC 7636 (PKCE) and §4.1.1 authorization request, as
// pure functions: what goes on the wire is decided here and asserted byte for byte in tests.
#pragma once

#include <string>
#include <string_view>

#include "core/secret.hpp"
#include "http/url.hpp"

namespace tokenbroker::oauth2 {

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
enum class client_auth { client_secret_post, client_secret_basic };

/// Who we are to the authorization server. An empty secret makes a public client (client_id
/// only, which only makes sense with PKCE).
struct client_identity {
  std::string client_id;
  secret client_secret;
  client_auth auth = client_auth::client_secret_post;
};

/// A token-endpoint POST: the form body and, for client_secret_basic, the Authorization header
/// value. Both carry secrets, hence the type.
struct token_request {
  secret body;           // application/x-www-form-urlencoded
  secret authorization;  // "Basic ..." or empty
};

/// "Basic " + base64(form-urlencode(id) ":" form-urlencode(secret)) (RFC 6749 §2.3.1: the id
/// and secret are form-encoded before base64, a step many clients forget).
secret basic_authorization(std::string_view client_id, const secret& client_secret);

/// grant_type=refresh_token (§6); `scope` is sent only when not empty.
token_request refresh_request(const client_identity& client, const secret& refresh_token,
                              std::string_view scope);
/// grant_type=client_credentials (§4.4).
token_request client_credentials_request(const client_identity& client, std::string_view scope);
/// grant_type=authorization_code (§4.1.3) with the PKCE code_verifier (RFC 7636 §4.5).
token_request authorization_code_request(const client_identity& client, const secret& code,
                                         std::string_view redirect_uri,
                                         const secret& code_verifier);

/// A PKCE code_verifier: 32 bytes from the CSPRNG, base64url (43 characters, RFC 7636 §4.1).
secret make_code_verifier();
/// BASE64URL(SHA256(verifier)), the S256 code_challenge (RFC 7636 §4.2).
std::string code_challenge_s256(const secret& verifier);
/// A fresh `state` value: 24 bytes from the CSPRNG, base64url.
std::string make_state();

/// The authorization request URL (§4.1.1 + RFC 7636 §4.3): `endpoint` with response_type=code,
/// client_id, redirect_uri, scope (when not empty), state, code_challenge and
/// code_challenge_method=S256 appended to any query it already has.
std::string authorization_url(const http::url& endpoint, std::string_view client_id,
                              std::string_view redirect_uri, std::string_view scope,
                              std::string_view state, std::string_view code_challenge);

}  // namespace tokenbroker::oauth2
