#include "oauth2/requests.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "core/random.hpp"
#include "http/form.hpp"

namespace tokenbroker::oauth2 {
namespace {

// RFC 6749 Appendix B: application/x-www-form-urlencoded, where a space becomes '+'.
// http::url_encode writes %20, which servers decode alike; '+' is what the RFC shows.
std::string form_encode(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ' ') out += '+';
    else out += http::url_encode(std::string_view(&c, 1));
  }
  return out;
}

// Client authentication goes last in the body (post) or into the header (basic): the client_id
// appears in the body only for client_secret_post, as §2.3.1 says a client must not use more
// than one authentication method per request.
token_request finish(http::form& f, const client_identity& client) {
  token_request r;
  if (client.auth == client_auth::client_secret_basic && !client.client_secret.empty()) {
    r.authorization = basic_authorization(client.client_id, client.client_secret);
  } else {
    f.add("client_id", client.client_id);
    if (!client.client_secret.empty()) f.add("client_secret", client.client_secret.reveal());
  }
  r.body = secret{f.encode()};
  return r;
}

}  // namespace

secret basic_authorization(std::string_view client_id, const secret& client_secret) {
  std::string pair = form_encode(client_id) + ":" + form_encode(client_secret.reveal());
  secret out{"Basic " + base64_encode(pair)};
  std::fill(pair.begin(), pair.end(), '\0');
  return out;
}

token_request refresh_request(const client_identity& client, const secret& refresh_token,
                              std::string_view scope) {
  http::form f;
  f.add("grant_type", "refresh_token").add("refresh_token", refresh_token.reveal());
  if (!scope.empty()) f.add("scope", scope);
  return finish(f, client);
}

token_request client_credentials_request(const client_identity& client, std::string_view scope) {
  http::form f;
  f.add("grant_type", "client_credentials");
  if (!scope.empty()) f.add("scope", scope);
  return finish(f, client);
}

token_request authorization_code_request(const client_identity& client, const secret& code,
                                         std::string_view redirect_uri,
                                         const secret& code_verifier) {
  http::form f;
  f.add("grant_type", "authorization_code")
      .add("code", code.reveal())
      .add("redirect_uri", redirect_uri)
      .add("code_verifier", code_verifier.reveal());
  return finish(f, client);
}

secret make_code_verifier() { return secret{random_base64url(32)}; }

std::string code_challenge_s256(const secret& verifier) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const auto& v = verifier.reveal();
  if (EVP_Digest(v.data(), v.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

std::string make_state() { return random_base64url(24); }

std::string authorization_url(const http::url& endpoint, std::string_view client_id,
                              std::string_view redirect_uri, std::string_view scope,
                              std::string_view state, std::string_view code_challenge) {
  http::form q;
  q.add("response_type", "code").add("client_id", client_id).add("redirect_uri", redirect_uri);
  if (!scope.empty()) q.add("scope", scope);
  q.add("state", state)
      .add("code_challenge", code_challenge)
      .add("code_challenge_method", "S256");
  auto u = endpoint;
  u.query = u.query.empty() ? q.encode() : u.query + "&" + q.encode();
  return u.scheme + "://" + u.host_header() + u.target();
}

}  // namespace tokenbroker::oauth2
