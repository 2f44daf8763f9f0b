#include "http_util.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace tokenbroker::sim {

response json_response(const request& req, unsigned status, const nlohmann::json& body) {
  response res{static_cast<http::status>(status), req.version()};
  res.set(http::field::server, "privicore-sim");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

response error_response(const request& req, unsigned status, std::string_view key,
                        std::string_view message) {
  return json_response(req, status, {{"error", key}, {"message", message}, {"status", status}});
}

response error_response(const request& req, const failure& f) {
  return error_response(req, static_cast<unsigned>(f.status), f.error, f.message);
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::string_view query_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

std::string header(const request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string{} : std::string(it->value());
}

std::optional<http::form> body_form(const request& req) {
  return http::form::parse(req.body());
}

std::optional<http::form> query_form(const request& req) {
  return http::form::parse(query_of(req.target()));
}

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts padding as data; drop one byte per '='.
  std::size_t len = static_cast<std::size_t>(n);
  for (auto it = in.rbegin(); it != in.rend() && *it == '=' && len > 0; ++it) --len;
  out.resize(len);
  return out;
}

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

sha256::sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("EVP_DigestInit_ex failed");
}

sha256::~sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void sha256::update(const char* data, std::size_t n) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n);
}

std::string sha256::finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  return hex(md, len);
}

std::string basic_raw(const request& req) {
  auto value = header(req, "Authorization");
  if (value.size() < 6 || !(value.starts_with("Basic ") || value.starts_with("basic "))) return {};
  auto raw = value.substr(6);
  while (!raw.empty() && raw.front() == ' ') raw.erase(0, 1);
  return raw;
}

std::optional<std::pair<std::string, std::string>> basic_credentials(const request& req) {
  auto raw = basic_raw(req);
  if (raw.empty()) return std::nullopt;
  auto decoded = base64_decode(raw);
  if (!decoded) return std::nullopt;
  auto colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  return std::pair{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

}  // namespace tokenbroker::sim
