// Fuzz target: the local API's request router and path handling (lib/http/router.hpp) behind
// Beast's request parser with the server's limits. The routes are the broker's own (app/api.cpp);
// each handler checks what it was given. Inputs Beast refuses are routed anyway, as
// "<method byte> <target>", so the router sees targets no parser would let through.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>

#include "fuzz_support.hpp"
#include "http/form.hpp"
#include "http/path.hpp"
#include "http/router.hpp"

using namespace tokenbroker;

namespace {

awaitable<http::response> check_captures(http::request_context& ctx) {
  for (const auto& [name, value] : ctx.params) {
    fuzz::require(!name.empty(), "captures are named");
    if (name == "name") fuzz::require(!value.empty(), "a {name} capture is never empty");
  }
  if (auto rest = ctx.param("path"); !rest.empty() || ctx.params.size() > 1) {
    // The proxy's rest-of-path capture goes through the cleaner before any upstream sees it.
    if (auto clean = http::clean_proxy_path(rest)) {
      fuzz::require(!clean->empty() && clean->front() == '/', "a clean path starts with '/'");
      fuzz::require(clean->find("//") == std::string::npos, "a clean path has no empty segment");
    }
  }
  (void)http::valid_query(ctx.query);
  if (!ctx.query.empty()) (void)http::form::parse(ctx.query);
  co_return http::json_response(http::status::ok, "{}");
}

const http::router& routes() {
  static const http::router r = [] {
    http::router r;
    using http::verb;
    r.add(verb::get, "/v1/token/{name}", check_captures);
    r.add(verb::get, "/v1/credentials", check_captures);
    r.add(verb::post, "/v1/credentials/{name}/refresh", check_captures);
    r.add(verb::post, "/v1/credentials/{name}/login", check_captures);
    r.add(verb::get, "/healthz", check_captures);
    r.add(verb::get, "/readyz", check_captures);
    r.add(verb::get, "/metrics", check_captures);
    for (auto v : {verb::get, verb::post, verb::put, verb::delete_, verb::patch, verb::head})
      r.add(v, "/v1/proxy/{name}/{path...}", check_captures);
    return r;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = fuzz::as_view(data, size);
  http::request req;
  if (!fuzz::parse_message(bytes, req)) {
    if (bytes.empty()) return 0;
    req = http::request{static_cast<http::verb>(static_cast<unsigned char>(bytes[0]) % 34), "", 11};
    req.target(bytes.substr(1, 8192));
  }
  http::peer_info peer;
  peer.unix_socket = true;
  net::io_context io;
  std::exception_ptr failure;
  int status = 0;
  net::co_spawn(
      io, [&]() -> awaitable<void> { status = (co_await routes().dispatch(req, peer)).result_int(); },
      [&](std::exception_ptr e) { failure = e; });
  io.run();
  fuzz::require(!failure, "the router does not throw");
  fuzz::require(status == 200 || status == 404 || status == 405, "200, 404 or 405");
  return 0;
}
