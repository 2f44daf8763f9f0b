// Route table for the local API: literal segments and {name} captures; tells 404 from 405.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/beast.hpp"
#include "http/server.hpp"

namespace tokenbroker::http {

/// What a handler sees of one request.
struct request_context {
  request& req;
  const peer_info& peer;
  std::vector<std::pair<std::string, std::string>> params;  // {name} captures, decoded
  std::string_view path;                                    // decoded-free raw path
  std::string_view query;                                   // raw, without '?'

  /// The capture named `name` ("" when absent).
  std::string_view param(std::string_view name) const;
};

using handler_fn = std::function<awaitable<response>(request_context&)>;

class router {
 public:
  /// Registers `pattern` ("/v1/token/{name}"; a final "{name...}" captures the rest) for `method`.
  void add(verb method, std::string pattern, handler_fn handler);
  /// Finds the handler and fills ctx.params; 404 when no pattern matches, 405 (with the Allow
  /// header) when the path matches under another method. Handlers' exceptions propagate.
  awaitable<response> dispatch(request& req, const peer_info& peer) const;

 private:
  struct route {
    verb method;
    std::vector<std::string> segments;
    handler_fn handler;
  };
  static bool match(const route& r, const std::vector<std::string_view>& parts,
                    std::vector<std::pair<std::string, std::string>>& params);
  std::vector<route> routes_;
};

/// A JSON response with `Cache-Control: no-store` (every local API answer carries it).
response json_response(status code, std::string body, unsigned version = 11);
/// `{"error": code, "message": text}` with the given status.
response error_response(status code, std::string_view error_code, std::string_view message,
                        unsigned version = 11);

}  // namespace tokenbroker::http
