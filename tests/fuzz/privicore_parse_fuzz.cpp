// Fuzz target: every Privicore response parser (lib/privicore/parse.hpp) on one answer. The input
// is a raw HTTP/1.1 response (status line, headers, body) as the client would read it; inputs
// Beast refuses become a 200 with the bytes as body, so the JSON side is reached either way.
#include "fuzz_support.hpp"
#include "privicore/parse.hpp"

using namespace tokenbroker;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = fuzz::as_view(data, size);
  http::response res;
  if (!fuzz::parse_message(bytes, res, 16 * 1024, 1024 * 1024)) {
    res = http::response{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = std::string(bytes);
  }
  const sys_seconds now{std::chrono::seconds{1'770'000'000}};
  auto e = privicore::response_error(res, now);
  fuzz::require(e.message.size() < 4096, "error messages are bounded");
  (void)privicore::parse_health(res);
  (void)privicore::parse_command_id(res);
  (void)privicore::parse_command_status(res, "cmd-1");
  (void)privicore::parse_profile_token(res);
  (void)privicore::parse_token_expiry(res);
  (void)privicore::parse_reauthorize(res);
  (void)privicore::parse_no_content(res);
  (void)privicore::parse_app_config(res, "app-1");
  (void)privicore::parse_authorization_code(res);
  if (auto ts = privicore::parse_token_set(res, now))
    fuzz::require(!ts->access_token.empty(), "a token set carries an access token");
  (void)privicore::parse_refresh(res, now);
  (void)privicore::parse_application_list(res);
  (void)privicore::parse_json_body(res);
  auto text = std::string(bytes.substr(0, 512));
  privicore::redact(text, bytes.substr(0, 16));
  fuzz::require(privicore::sanitize(bytes, 200).size() <= 200 + 3, "sanitize truncates");
  return 0;
}
