// The simulator's world: profiles, tokens, OAuth applications, authorization codes, grants and
// async commands. Pure logic, no I/O; time comes from an injected clock. Single-threaded.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"
#include "records.hpp"

namespace tokenbroker::sim {

class state {
 public:
  /// `sw` is read live (TTL and rotation switches); it must outlive the state.
  state(clock_fn now, const switches& sw);

  // Seeding (start-up flags).
  void add_profile(const std::string& user, const std::string& password);
  outcome<void> add_app(const std::string& owner, const std::string& client_id,
                        const std::string& client_secret);

  // Profile session, PROTOCOL.md §5.3–§5.6 and §5.15.
  outcome<profile_token_issue> authenticate(std::string_view user, std::string_view password);
  /// Validates a profile token (header P); returns its profile. 401 with the reason otherwise.
  outcome<std::string> profile_of(std::string_view token);
  /// The profile of a valid profile token, without counting a rejection.
  std::optional<std::string> peek_profile(std::string_view token) const;
  outcome<time_point> token_expiry(std::string_view token);
  /// 200 mode: a new token; the old one is superseded at once.
  outcome<profile_token_issue> reauthorize(std::string_view token, std::chrono::milliseconds ttl);
  /// 202 mode: a command; on success the token's lifetime becomes ttl from then.
  outcome<std::string> reauthorize_command(std::string_view token, std::chrono::milliseconds ttl);
  outcome<void> revoke_profile_token(std::string_view token);
  outcome<std::string> register_profile(std::string_view user, std::string_view password);

  // OAuth applications and the grant, PROTOCOL.md §5.7–§5.14 and §6.
  std::string register_app(const std::string& profile, std::string_view name,
                           std::string_view redirect_uri, std::vector<std::string> scopes);
  outcome<const application*> retrieve_app_config(const std::string& profile,
                                                  std::string_view app_id);
  std::vector<const application*> apps_of(const std::string& profile) const;
  outcome<std::string> request_code(const std::string& profile, std::string_view client_id,
                                    std::string_view nonce, const std::vector<std::string>& scopes);
  /// Header C: 401 for unknown client id or wrong secret.
  outcome<const application*> authenticate_client(std::string_view client_id,
                                                  std::string_view secret);
  outcome<code_issue> retrieve_code(const application& app, std::string_view request_id,
                                    std::string_view nonce);
  outcome<oauth_token_issue> obtain_token(const application& app, std::string_view code);
  /// Header A + refresh_token. nullopt in 202 mode (the current access token is extended).
  outcome<std::optional<oauth_token_issue>> refresh(std::string_view access_token,
                                                    std::string_view refresh_token,
                                                    bool answer_with_tokens);
  /// Validates an OAuth access token for the data plane; returns the grantor profile.
  outcome<std::string> access_profile(std::string_view token);
  /// A data-plane command with the given outcome ("succeeded", "rejected", "never").
  outcome<std::string> data_command(const std::string& profile, std::string_view outcome_name);

  // Async commands, PROTOCOL.md §3.
  const command* find_command(std::string_view id) const;
  /// Completes a started command with its planned outcome and applies its effect. nullptr when
  /// the command is unknown, already finished, or never completes.
  const command* complete(std::string_view id);

  // Admin.
  nlohmann::json check(std::string_view token) const;
  std::size_t revoke_grants(std::string_view client_id);
  bool expire(std::string_view token);
  nlohmann::json stats() const;
  nlohmann::json events(std::int64_t since_us) const;
  /// Every secret value issued or given so far (tokens of every kind, authorization codes,
  /// client secrets, profile passwords), for leak tests: `[{"kind","value"}]`.
  nlohmann::json secrets() const;
  counters& count() noexcept { return counters_; }
  /// Counts a request by path; command ids are folded into "/request-status/{commandId}".
  void count_request(std::string_view path);

 private:
  struct profile_record {
    std::string password;
    bool active = false;
  };
  struct code_request {
    std::string client_id, nonce, profile;
    bool ready = false, retrieved = false;
  };
  struct auth_code {
    std::string client_id, profile;
    time_point expires_at;
    bool used = false;
  };
  struct grant {
    std::string client_id, profile, access, refresh;
    bool revoked = false;
  };

  std::string new_command(command_kind kind, std::string profile, command_status planned,
                          std::string body);
  std::string issue_token(token_kind kind, std::string profile, std::chrono::milliseconds ttl,
                          std::string grant_id = {}, std::string client_id = {});
  /// Why a token is not usable now ("" when it is).
  std::string why_invalid(const token_record& t) const;
  failure reject_token(std::string error, std::string reason);
  token_record* find_token(std::string_view token);
  oauth_token_issue issue_grant_tokens(const std::string& grant_id, grant& g);
  void record_event(std::string type, std::string_view presented_refresh, nlohmann::json extra);

  clock_fn now_;
  const switches& sw_;
  counters counters_;
  std::map<std::string, profile_record, std::less<>> profiles_;
  std::map<std::string, token_record, std::less<>> tokens_;
  std::map<std::string, command, std::less<>> commands_;
  std::map<std::string, application, std::less<>> apps_;  // by application id
  std::map<std::string, std::string, std::less<>> client_to_app_;
  std::map<std::string, code_request, std::less<>> code_requests_;       // by request (command) id
  std::map<std::string, std::vector<std::string>, std::less<>> nonces_;  // per client id
  std::map<std::string, auth_code, std::less<>> codes_;
  std::map<std::string, grant, std::less<>> grants_;
  std::vector<nlohmann::json> events_;
};

/// A random UUID v4 string (command ids, channel ids, client ids).
std::string new_uuid();
/// First 16 hex digits of SHA-256: identifies a token in events without disclosing it.
std::string token_fp(std::string_view token);
/// RFC 3339 UTC, seconds precision (PROTOCOL.md §1).
std::string wire_time(time_point t);

}  // namespace tokenbroker::sim
