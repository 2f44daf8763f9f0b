// The data plane, guarded by an OAuth access token in X-DPT-AUTHORIZATION (PROTOCOL.md §5.11
// "Using the token", UNKNOWN there; GDE's form is simulated). The upload is streamed by the
// session (session.cpp) and the download body is streamed by it too.
#include <cctype>
#include <charconv>

#include "handlers.hpp"

namespace tokenbroker::sim {
namespace {

using json = nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// GET|POST|PUT|DELETE|PATCH /data-token/echo: what arrived, so tests can assert on the exact
// request a proxy forwarded. Header names are lower-cased; repeats are joined with ", ".
awaitable<reply> handle_echo(context& ctx, const request& req) {
  auto profile = data_plane_profile(ctx, req);
  if (!profile) co_return reply{error_response(req, profile.error())};
  json headers = json::object();
  for (const auto& h : req) {
    auto name = lower(h.name_string());
    auto value = std::string(h.value());
    if (headers.contains(name))
      headers[name] = headers[name].get<std::string>() + ", " + value;
    else
      headers[name] = value;
  }
  co_return reply{json_response(req, 200,
                                {{"method", std::string(req.method_string())},
                                 {"path", std::string(path_of(req.target()))},
                                 {"query", std::string(query_of(req.target()))},
                                 {"headers", std::move(headers)},
                                 {"body_bytes", req.body().size()},
                                 {"profile", *profile}})};
}

// GET /data-token/download?bytes=N[&framing=chunked|length]: N bytes of the pattern
// byte[i] = i % 251, chunked unless `framing=length` asks for a Content-Length (PROTOCOL.md
// does not say how Privicore frames a download; a stored file's size is known, so either).
awaitable<reply> handle_download(context& ctx, const request& req) {
  auto profile = data_plane_profile(ctx, req);
  if (!profile) co_return reply{error_response(req, profile.error())};
  auto q = query_form(req);
  auto text = q ? q->get("bytes").value_or("0") : std::string("?");
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc{} || p != text.data() + text.size())
    co_return reply{error_response(req, 422, "data.validation", "bytes must be a number")};
  auto framing = q ? q->get("framing").value_or("chunked") : std::string("chunked");
  if (framing != "chunked" && framing != "length")
    co_return reply{error_response(req, 422, "data.validation", "framing is chunked or length")};
  response res{http::status::ok, req.version()};
  res.set(http::field::server, "privicore-sim");
  res.set(http::field::content_type, "application/octet-stream");
  res.keep_alive(req.keep_alive());
  co_return reply{std::move(res), n, framing == "length"};
}

// POST /data-token/command?outcome=succeeded|rejected|never: 202 + command id, acked on the
// grantor's channel accordingly; "never" stays "started" forever.
awaitable<reply> handle_data_command(context& ctx, const request& req) {
  auto profile = data_plane_profile(ctx, req);
  if (!profile) co_return reply{error_response(req, profile.error())};
  auto q = query_form(req);
  auto id = ctx.st.data_command(*profile, q ? q->get("outcome").value_or("succeeded") : "?");
  if (!id) co_return reply{error_response(req, id.error())};
  auto accepted = co_await ctx.accept_command(req, *id);
  co_return reply{std::move(accepted)};
}

}  // namespace tokenbroker::sim
