// Request/response helpers shared by the simulator's handlers.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "http/beast.hpp"
#include "http/form.hpp"
#include "state.hpp"

namespace tokenbroker::sim {

using http::request;
using http::response;

/// What a handler produces: a response, or a streamed download of `download` pattern bytes.
struct reply {
  reply() = default;
  reply(response r, std::optional<std::uint64_t> download_bytes = std::nullopt,
        bool download_with_length = false)
      : res(std::move(r)), download(download_bytes), with_length(download_with_length) {}
  response res;
  std::optional<std::uint64_t> download;
  bool with_length = false;  // the download is framed by Content-Length, not chunked
};

/// A response with a JSON body, keep-alive mirroring the request.
response json_response(const request& req, unsigned status, const nlohmann::json& body);
/// {"error": key, "message": text, "status": n} with that status.
response error_response(const request& req, unsigned status, std::string_view key,
                        std::string_view message);
response error_response(const request& req, const failure& f);

/// The path of a request-target (before '?').
std::string_view path_of(std::string_view target);
/// The query of a request-target (after '?', "" if none).
std::string_view query_of(std::string_view target);
/// A header value, "" if absent.
std::string header(const request& req, std::string_view name);
/// The form-urlencoded body (or query), nullopt when malformed.
std::optional<http::form> body_form(const request& req);
std::optional<http::form> query_form(const request& req);

/// Header C (PROTOCOL.md §2): "Basic base64(id:secret)" → {id, secret}; nullopt if malformed.
std::optional<std::pair<std::string, std::string>> basic_credentials(const request& req);
/// Header A (PROTOCOL.md §2): "Basic <raw access token>" → the raw value (not base64).
std::string basic_raw(const request& req);

/// Standard base64 decoding; nullopt on invalid input.
std::optional<std::string> base64_decode(std::string_view in);
/// Lower-case hex of bytes.
std::string hex(const unsigned char* data, std::size_t n);

/// Incremental SHA-256 (OpenSSL EVP).
class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const char* data, std::size_t n);
  /// Lower-case hex digest; the object is spent afterwards.
  std::string finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

}  // namespace tokenbroker::sim
