#include "support/sim.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include "core/random.hpp"
#include "http/client.hpp"
#include "http/form.hpp"

namespace tokenbroker::test {

using json = nlohmann::json;

std::string http_result::header(const std::string& name) const {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  auto it = headers.find(lower);
  return it == headers.end() ? std::string{} : it->second;
}

http_result http_call(const std::string& base_url, const std::string& ca_file,
                      const std::string& method, const std::string& target,
                      const headers_list& headers, const std::string& body,
                      std::chrono::milliseconds timeout) {
  return http_call_tls(base_url, tls_files{ca_file, {}, {}}, method, target, headers, body,
                       timeout);
}

http_result http_call_tls(const std::string& base_url, const tls_files& tls,
                          const std::string& method, const std::string& target,
                          const headers_list& headers, const std::string& body,
                          std::chrono::milliseconds timeout) {
  auto base = http::url::parse(base_url);
  if (!base.has_value()) throw std::invalid_argument("bad URL " + base_url);
  // One client per set of files and thread: an OpenSSL 3 context costs tens of milliseconds to
  // build. No pooling, so every call opens a fresh connection (faults see one request per
  // connection).
  struct cached_client {
    explicit cached_client(const tls_files& files)
        : client(ioc.get_executor(), [&] {
            http::client_options o;
            o.ca_file = files.ca_file;
            o.cert_file = files.cert_file;
            o.key_file = files.key_file;
            o.max_response_body = 512 * 1024 * 1024;
            o.max_idle_per_origin = 0;
            return o;
          }()) {}
    net::io_context ioc;
    http::client client;
  };
  thread_local std::map<std::string, std::unique_ptr<cached_client>> clients;
  auto& slot = clients[tls.ca_file + '\0' + tls.cert_file + '\0' + tls.key_file];
  if (!slot) slot = std::make_unique<cached_client>(tls);
  auto& ioc = slot->ioc;
  auto& client = slot->client;
  ioc.restart();
  http::request req{http::bhttp::string_to_verb(method), target, 11};
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty()) req.prepare_payload();

  http_result out;
  std::exception_ptr failure;
  net::co_spawn(ioc, client.send(*base, std::move(req), timeout),
                [&](std::exception_ptr e, result<http::response> r) {
                  if (e) {
                    failure = e;
                  } else if (!r) {
                    out.error = r.error().describe();
                  } else {
                    out.status = static_cast<int>(r->result_int());
                    for (const auto& f : *r) {
                      std::string name(f.name_string());
                      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
                      out.headers[name] = std::string(f.value());
                    }
                    out.body = std::move(r->body());
                  }
                });
  ioc.run();
  if (failure) std::rethrow_exception(failure);
  return out;
}

std::string basic_auth(const std::string& id, const std::string& secret) {
  return "Basic " + base64_encode(id + ":" + secret);
}

std::string form_body(const headers_list& fields) {
  http::form f;
  for (const auto& [k, v] : fields) f.add(k, v);
  return f.encode();
}

sim_fixture::sim_fixture(std::vector<std::string> flags, std::chrono::milliseconds ready_timeout) {
  tls_ = std::find(flags.begin(), flags.end(), "--tls") != flags.end();
  if (auto it = std::find(flags.begin(), flags.end(), "--ca-out"); it != flags.end()) {
    if (std::next(it) != flags.end()) ca_file_ = *std::next(it);
  } else if (tls_) {
    ca_file_ = dir_.file("ca.pem");
    flags.insert(flags.end(), {"--ca-out", ca_file_});
  }
  process_options o;
  o.argv = {bin_path("privicore-sim"), "--listen", "127.0.0.1:0"};
  o.argv.insert(o.argv.end(), flags.begin(), flags.end());
  o.stderr_path = dir_.file("sim.stderr");
  proc_ = std::make_unique<process>(std::move(o));
  const std::string prefix = "privicore-sim listening on ";
  auto line = proc_->wait_for_line([&](const std::string& l) { return l.starts_with(prefix); },
                                   ready_timeout);
  if (!line)
    throw std::runtime_error("privicore-sim did not become ready; stderr:\n" +
                             proc_->stderr_text());
  url_ = line->substr(prefix.size());
  auto parsed = http::url::parse(url_);
  if (!parsed.has_value()) throw std::runtime_error("unexpected ready line: " + *line);
  port_ = parsed->port;
}

sim_fixture::~sim_fixture() {
  if (proc_) proc_->terminate(std::chrono::seconds{5});
}

std::string sim_fixture::ws_url(const std::string& path) const {
  return (tls_ ? "wss://127.0.0.1:" : "ws://127.0.0.1:") + std::to_string(port_) + path;
}

http_result sim_fixture::http_call(const std::string& method, const std::string& target,
                                   const headers_list& headers, const std::string& body,
                                   std::chrono::milliseconds timeout) const {
  return test::http_call(url_, ca_file_, method, target, headers, body, timeout);
}

http_result sim_fixture::post_form(const std::string& target, const headers_list& fields,
                                   const headers_list& headers) const {
  auto all = headers;
  all.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  return http_call("POST", target, all, form_body(fields));
}

json sim_fixture::admin(const std::string& method, const std::string& target,
                        const json& body) const {
  headers_list h;
  std::string text;
  if (!body.is_null()) {
    h.emplace_back("Content-Type", "application/json");
    text = body.dump();
  }
  auto r = http_call(method, target, h, text);
  if (r.status != 200)
    throw std::runtime_error(method + " " + target + ": " +
                             (r.error.empty() ? std::to_string(r.status) + " " + r.body : r.error));
  return r.json();
}

json sim_fixture::stats() const {
  return admin("GET", "/_sim/stats", nullptr);
}
json sim_fixture::config(const json& changes) const {
  return changes.is_null() ? admin("GET", "/_sim/config", nullptr)
                           : admin("PUT", "/_sim/config", changes);
}
void sim_fixture::fault(const json& f) const {
  admin("POST", "/_sim/faults", f);
}
void sim_fixture::clear_faults() const {
  admin("DELETE", "/_sim/faults", nullptr);
}
json sim_fixture::check(const std::string& token) const {
  return admin("POST", "/_sim/check", {{"token", token}});
}
std::size_t sim_fixture::revoke_grants(const std::string& client_id) const {
  return admin("POST", "/_sim/revoke-grants", {{"client_id", client_id}})["revoked_grants"]
      .get<std::size_t>();
}
json sim_fixture::events() const {
  return admin("GET", "/_sim/events", nullptr);
}
json sim_fixture::secrets() const { return admin("GET", "/_sim/secrets", nullptr)["secrets"]; }

void sim_fixture::expire(const std::string& token) const {
  admin("POST", "/_sim/expire", {{"token", token}});
}

}  // namespace tokenbroker::test
