#include "http/router.hpp"

#include <nlohmann/json.hpp>

#include "http/form.hpp"

namespace tokenbroker::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    auto next = path.find('/', pos);
    parts.push_back(path.substr(pos, next == std::string_view::npos ? next : next - pos));
    if (next == std::string_view::npos) break;
    pos = next;
  }
  return parts;
}

}  // namespace

std::string_view request_context::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

void router::add(verb method, std::string pattern, handler_fn handler) {
  route r{method, {}, std::move(handler)};
  for (auto part : split_path(pattern)) r.segments.emplace_back(part);
  routes_.push_back(std::move(r));
}

bool router::match(const route& r, const std::vector<std::string_view>& parts,
                   std::vector<std::pair<std::string, std::string>>& params) {
  params.clear();
  for (std::size_t i = 0; i < r.segments.size(); ++i) {
    const auto& seg = r.segments[i];
    bool capture = seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
    if (capture && seg.ends_with("...}")) {
      // Rest-of-path capture: the remaining segments, kept raw (the caller validates them).
      std::string rest;
      for (std::size_t j = i; j < parts.size(); ++j) {
        if (!rest.empty()) rest += '/';
        rest += parts[j];
      }
      params.emplace_back(seg.substr(1, seg.size() - 5), std::move(rest));
      return true;
    }
    if (i >= parts.size()) return false;
    if (capture) {
      auto decoded = url_decode(parts[i]);
      if (!decoded || decoded->empty()) return false;
      params.emplace_back(seg.substr(1, seg.size() - 2), std::move(*decoded));
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return parts.size() == r.segments.size();
}

awaitable<response> router::dispatch(request& req, const peer_info& peer) const {
  std::string_view target = req.target();
  auto q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  auto parts = split_path(path);

  request_context ctx{req, peer, {}, path, query};
  std::string allow;
  for (const auto& r : routes_) {
    if (!match(r, parts, ctx.params)) continue;
    if (r.method == req.method()) co_return co_await r.handler(ctx);
    if (!allow.empty()) allow += ", ";
    allow += std::string(bhttp::to_string(r.method));
  }
  if (!allow.empty()) {
    auto res = error_response(status::method_not_allowed, "method_not_allowed",
                              "method not allowed; use " + allow, req.version());
    res.set(field::allow, allow);
    co_return res;
  }
  co_return error_response(status::not_found, "not_found", "no such endpoint", req.version());
}

response json_response(status code, std::string body, unsigned version) {
  response res{code, version};
  res.set(field::content_type, "application/json");
  res.set(field::cache_control, "no-store");
  res.body() = std::move(body);
  if (!res.body().empty() && res.body().back() != '\n') res.body() += '\n';
  res.prepare_payload();
  return res;
}

response error_response(status code, std::string_view error_code, std::string_view message,
                        unsigned version) {
  std::string body = "{\"error\":\"" + std::string(error_code) + "\",\"message\":";
  // A message may carry an upstream's text: control characters are escaped and bytes that are
  // not UTF-8 replaced (U+FFFD), so the body is valid JSON whatever the message holds.
  body += nlohmann::json(message).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  body += '}';
  return json_response(code, std::move(body), version);
}

}  // namespace tokenbroker::http
