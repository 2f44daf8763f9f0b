// Fuzz target: every Privicore response parser (lib/privicore/parse.hpp) on one answer. The input
// is a raw HTTP/1.1 response (status line, headers, body) as the client would read it; inputs
// Beast refuses become a 200 with the bytes as body, so the JSON side is reached either way.
#include "fuzz_support.hpp"
#include "privicore/parse.hpp"

using namespace tokenbroker;

namespace {

// An expiry must lie within ten years of `now` (clamp_expiry) and survive what the engine does
// with it: arithmetic against system_clock, in nanoseconds (UBSan reports an overflow).
void check_expiry(sys_seconds t, sys_seconds now) {
  fuzz::require(t >= now - privicore::max_expiry_horizon && t <= now + privicore::max_expiry_horizon,
                "expiries are clamped to ten years of now");
  volatile auto left = (t - system_clock::now()).count();
  (void)left;
}

}  // namespace

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
  // These three clamp around the wall clock, which moves on while they run.
  auto wall_before = std::chrono::floor<std::chrono::seconds>(system_clock::now());
  auto profile = privicore::parse_profile_token(res);
  auto expiry = privicore::parse_token_expiry(res);
  auto code = privicore::parse_authorization_code(res);
  auto wall_after = std::chrono::floor<std::chrono::seconds>(system_clock::now());
  auto wall_check = [&](sys_seconds t) {
    fuzz::require(t >= wall_before - privicore::max_expiry_horizon && t <= wall_after + privicore::max_expiry_horizon,
                  "expiries are clamped to ten years of now");
    volatile auto left = (t - system_clock::now()).count();
    (void)left;
  };
  if (profile) wall_check(profile->expires_at);
  if (expiry) wall_check(*expiry);
  if (code && code->expires_at) wall_check(*code->expires_at);
  (void)privicore::parse_reauthorize(res);
  (void)privicore::parse_no_content(res);
  (void)privicore::parse_app_config(res, "app-1");
  if (auto ts = privicore::parse_token_set(res, now)) {
    fuzz::require(!ts->access_token.empty(), "a token set carries an access token");
    check_expiry(ts->expires_at, now);
    if (ts->refresh_expires_at) check_expiry(*ts->refresh_expires_at, now);
  }
  (void)privicore::parse_refresh(res, now);
  (void)privicore::parse_application_list(res);
  (void)privicore::parse_json_body(res);
  auto text = std::string(bytes.substr(0, 512));
  privicore::redact(text, bytes.substr(0, 16));
  fuzz::require(privicore::sanitize(bytes, 200).size() <= 200 + 3, "sanitize truncates");
  return 0;
}
