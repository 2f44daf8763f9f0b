// etcd_client::watch: one long-lived POST /v3/watch per connection, its chunked answer read as
// newline-delimited JSON messages, reconnected over the endpoints with backoff after a break.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <limits>

#include "cluster/etcd_client.hpp"
#include "cluster/etcd_impl.hpp"
#include "core/backoff.hpp"
#include "core/log.hpp"

namespace tokenbroker::cluster {

namespace {

namespace bhttp = boost::beast::http;

constexpr std::string_view k_path = "/v3/watch";
constexpr std::size_t k_max_message = 64 * 1024 * 1024;  // one watch answer (a batch of events)

// The watch stream is idle for as long as nothing changes; TCP keepalive notices a peer that
// vanished without closing (a dead host, a dropped route) within about 20 seconds.
void enable_keepalive(http::connection& c) {
  int fd = c.tcp().socket().native_handle();
  int on = 1, idle = 10, interval = 3, count = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

// Registers an open stream so that stop() can close it.
struct stream_registration {
  std::set<http::connection*>& set;
  http::connection* c;
  stream_registration(std::set<http::connection*>& s, http::connection* conn) : set(s), c(conn) {
    set.insert(c);
  }
  ~stream_registration() { set.erase(c); }
};

stream_outcome end(stream_end how, bool established, std::string why) {
  return stream_outcome{how, established, std::move(why)};
}

}  // namespace

std::optional<stream_outcome> etcd_client::impl::handle_message(
    http::connection& c, const std::string& line, watch_state& st, bool& established,
    const std::function<void(const watch_event&)>& on_event,
    const std::function<void()>& on_resync) {
  auto& d = *this;
  auto j = json::parse(line, nullptr, false);
  if (!j.is_object()) return end(stream_end::failed, established, "unreadable watch message");
  if (auto e = j.find("error"); e != j.end()) {
    auto f = codec::failure_from_body(k_path, 0, line);
    return end(f.token_refused ? stream_end::token_refused : stream_end::broken, established,
               f.err.message);
  }
  auto res = j.find("result");
  if (res == j.end() || !res->is_object())
    return end(stream_end::failed, established, "watch message without result");
  const json& r = *res;
  auto rev = codec::header_revision(r);
  auto compact = codec::int64_field(r, "compact_revision");
  if (!rev || !compact) return end(stream_end::failed, established, "unreadable watch header");
  auto flag = [&](const char* name) {
    auto it = r.find(name);
    return it != r.end() && it->is_boolean() && it->get<bool>();
  };
  if (flag("canceled")) {
    if (*compact > 0)
      return end(stream_end::compacted, established,
                 "etcd compacted its history past revision " + std::to_string(st.next));
    std::string reason = r.value("cancel_reason", std::string{});
    auto f = codec::classify(k_path, 0, 0, reason);
    return end(f.token_refused ? stream_end::token_refused : stream_end::failed, established,
               "etcd canceled the watch: " + f.err.message);
  }
  if (flag("created")) {
    std::string cluster;
    if (auto h = r.find("header"); h != r.end() && h->is_object())
      cluster = h->value("cluster_id", std::string{});
    // Resuming at `next` is continuous only within the same history: the same cluster, and a
    // store that has not gone back behind what we already delivered.
    if (st.next > 0 && ((!st.cluster_id.empty() && cluster != st.cluster_id) || *rev + 1 < st.next))
      return end(stream_end::discontinuous, established,
                 "etcd's history changed (cluster " + cluster + ", revision " +
                     std::to_string(*rev) + ")");
    st.cluster_id = cluster;
    if (st.next == 0) st.next = *rev + 1;  // "from now": after the revision it was created at
    established = true;
    c.tcp().expires_never();
    d.set_healthy(true);
    if (st.need_resync) {
      st.need_resync = false;
      on_resync();
    }
  }
  auto events = r.find("events");
  if (events == r.end()) return std::nullopt;
  if (!established) return end(stream_end::failed, false, "events before the watch was created");
  if (!events->is_array()) return end(stream_end::failed, true, "unreadable watch events");
  // Every event of one revision comes in one message, so `floor` (fixed for the message) drops
  // only revisions delivered before a reconnect, never a sibling of the same transaction.
  const std::int64_t floor = st.next;
  std::int64_t last = 0;
  for (const auto& ev : *events) {
    auto record = ev.is_object() && ev.contains("kv") ? codec::parse_kv(ev.at("kv"), k_path)
                                                      : result<kv>(make_error(errc::malformed, "no kv"));
    if (!record) return end(stream_end::failed, true, "unreadable watch event");
    watch_event out;
    std::string type = ev.value("type", std::string{"PUT"});
    if (type == "DELETE") {
      out.what = watch_event::kind::erase;
    } else if (type != "PUT") {
      return end(stream_end::failed, true, "unknown watch event type " + type);
    }
    out.record = std::move(*record);
    if (out.record.mod_revision < floor) continue;
    last = std::max(last, out.record.mod_revision);
    on_event(out);
  }
  if (last > 0) st.next = std::max(st.next, last + 1);
  return std::nullopt;
}

awaitable<stream_outcome> etcd_client::impl::run_stream(
    std::size_t i, const std::string& prefix, watch_state& st,
    const std::function<void(const watch_event&)>& on_event,
    const std::function<void()>& on_resync) {
  auto& d = *this;
  const auto& ep = d.options.endpoints[i];
  const auto deadline = steady_clock::now() + d.options.timeout;
  bool reached = false;
  auto token = co_await d.token_for(i, reached);
  if (!token) co_return end(stream_end::failed, false, token.error().describe());
  auto conn = co_await d.http.acquire(ep, deadline);
  if (!conn) co_return end(stream_end::failed, false, conn.error().describe());
  auto& c = **conn;
  stream_registration reg(d.streams, &c);
  if (d.stopped) co_return end(stream_end::stopped, false, {});
  enable_keepalive(c);

  json create{{"key", codec::encode_bytes(prefix.empty() ? std::string(1, '\0') : prefix)},
              {"range_end", codec::encode_bytes(prefix_end(prefix))}};
  if (st.next > 0) create["start_revision"] = std::to_string(st.next);
  json body{{"create_request", std::move(create)}};
  auto req = d.make_request(i, k_path, body.dump(), *token);
  req.set(http::field::host, ep.host_header());
  c.expires_at(deadline);
  if (auto ec = co_await c.write(req); ec)
    co_return end(d.stopped ? stream_end::stopped : stream_end::failed, false,
                  http::io_error(ec, "send to " + ep.host_header()).describe());

  bhttp::response_parser<bhttp::buffer_body> p;
  p.header_limit(64 * 1024);
  p.body_limit(std::numeric_limits<std::uint64_t>::max());  // endless; each message is bounded
  if (auto ec = co_await c.read_header(p, deadline); ec)
    co_return end(d.stopped ? stream_end::stopped : stream_end::failed, false,
                  http::io_error(ec, "read from " + ep.host_header()).describe());

  std::array<char, 16 * 1024> buf;
  std::string pending;
  const int status = static_cast<int>(p.get().result_int());
  bool established = false;
  while (!p.is_done()) {
    auto& b = p.get().body();
    b.data = buf.data();
    b.size = buf.size();
    auto ec = co_await c.read_some(p);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (d.stopped) co_return end(stream_end::stopped, established, {});
    if (ec)
      co_return end(established ? stream_end::broken : stream_end::failed, established,
                    http::io_error(ec, "watch stream from " + ep.host_header()).describe());
    pending.append(buf.data(), buf.size() - b.size);
    if (pending.size() > k_max_message)
      co_return end(stream_end::failed, established, "a watch message exceeds the size limit");
    if (status != 200) continue;  // an error body: read it whole, below
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      auto out = handle_message(c, line, st, established, on_event, on_resync);
      if (out && out->how == stream_end::token_refused) d.forget_token(i, *token);
      if (out) co_return *out;
    }
  }
  if (status != 200) {
    auto f = codec::failure_from_body(k_path, status, pending);
    if (f.token_refused) d.forget_token(i, *token);
    co_return end(f.token_refused ? stream_end::token_refused : stream_end::failed, false,
                  f.err.message);
  }
  co_return end(established ? stream_end::broken : stream_end::failed, established,
                "etcd ended the watch stream");
}

awaitable<void> etcd_client::watch(std::string prefix, std::int64_t start_revision,
                                   std::function<void(const watch_event&)> on_event,
                                   std::function<void()> on_resync) {
  auto& d = *impl_;
  const std::size_t n = d.options.endpoints.size();
  watch_state st;
  st.next = start_revision;
  backoff delay{std::chrono::milliseconds{100}, std::chrono::seconds{1}};
  std::size_t i = d.preferred;
  std::size_t failures_in_round = 0;
  bool token_renewed = false;  // one fresh token per break, not a loop of them
  bool outage_logged = false;
  while (!d.stopped) {
    auto out = co_await d.run_stream(i, prefix, st, on_event, on_resync);
    if (d.stopped || out.how == stream_end::stopped) break;
    if (out.established) {
      token_renewed = false;
      failures_in_round = 0;
      delay.reset();
      outage_logged = false;
    }
    switch (out.how) {
      case stream_end::compacted:
      case stream_end::discontinuous:
        log::warn("etcd watch on {}: {}; the watch restarts from now", d.endpoint_name(i), out.why);
        st.next = 0;
        st.need_resync = true;
        continue;
      case stream_end::token_refused:
        if (!token_renewed) {
          token_renewed = true;
          continue;
        }
        break;
      case stream_end::broken:
        d.set_healthy(false);
        log::warn("etcd watch on {} broke ({}); reconnecting", d.endpoint_name(i), out.why);
        outage_logged = true;
        continue;  // at once, on the same endpoint first
      default:
        break;
    }
    d.set_healthy(false);
    if (!outage_logged) {
      log::warn("etcd watch on {} failed: {}", d.endpoint_name(i), out.why);
      outage_logged = true;
    } else {
      log::debug("etcd watch on {} failed: {}", d.endpoint_name(i), out.why);
    }
    i = (i + 1) % n;
    if (++failures_in_round < n) continue;
    failures_in_round = 0;
    net::steady_timer t(d.ex, delay.next(d.rng));
    d.sleepers.insert(&t);
    co_await t.async_wait(use_tuple);
    d.sleepers.erase(&t);
  }
}

}  // namespace tokenbroker::cluster
