// A small blocking WebSocket client for integration tests (ws:// and wss:// verified against a
// CA file). Messages are received in the background while a call waits, so none is lost.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "http/beast.hpp"

namespace tokenbroker::test {

class ws_client {
 public:
  /// Connects and completes the upgrade; throws std::runtime_error on failure.
  explicit ws_client(const std::string& url, const std::string& ca_file = {});
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  /// Sends one text frame; throws on failure.
  void send(const std::string& text);
  void send(const nlohmann::json& msg) { send(msg.dump()); }
  /// The next text message, or nullopt on timeout or once the connection closed.
  std::optional<std::string> receive(std::chrono::milliseconds timeout);
  /// Receives until a message (parsed as JSON) satisfies `pred`; others are discarded.
  std::optional<nlohmann::json> wait_for(const std::function<bool(const nlohmann::json&)>& pred,
                                         std::chrono::milliseconds timeout);
  /// {"action":"joinChannel","data":{"authorizationToken":token}} and its answer (the first
  /// message with a "status").
  std::optional<nlohmann::json> join(const std::string& token,
                                     std::chrono::milliseconds timeout = std::chrono::seconds{5});
  bool closed() const;

 private:
  struct impl;
  template <class Stream>
  struct impl_for;
  http::ssl::context tls_;  // outlives impl_
  std::unique_ptr<impl> impl_;
};

}  // namespace tokenbroker::test
