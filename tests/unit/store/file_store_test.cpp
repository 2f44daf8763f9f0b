#include "store/file_store.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <future>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

using namespace tokenbroker;
using namespace tokenbroker::store;

namespace {

struct tmpdir {
  std::string path;
  tmpdir() {
    char t[] = "/tmp/tb-store-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~tmpdir() { std::filesystem::remove_all(path); }
};

template <class T>
T run(awaitable<T> a) {
  net::io_context io;
  std::optional<T> out;
  net::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  io.run();
  return std::move(*out);
}

broker::token_bundle sample() {
  broker::token_bundle b;
  b.access_token = secret{"access-XYZ-value"};
  b.refresh_token = secret{"refresh-XYZ-value"};
  b.token_type = "bearer";
  b.scope = "all";
  b.obtained_at = sys_seconds{std::chrono::seconds{1700000000}};
  b.expires_at = b.obtained_at + std::chrono::seconds{30};
  b.refresh_expires_at = b.obtained_at + std::chrono::hours{1};
  b.grant_id = "g1";
  return b;
}

secret key_of(char c) { return secret{std::string(32, c)}; }

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

TEST_CASE("a_saved_bundle_loads_back_identically_and_is_stored_encrypted_0600") {
  tmpdir d;
  auto fs = file_store::open_dir(d.path + "/state", key_of('k'));
  REQUIRE(fs.has_value());
  auto& store = **fs;
  REQUIRE(run(store.save("privicore", sample())).has_value());
  auto loaded = run(store.load("privicore"));
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->has_value());
  auto& b = **loaded;
  CHECK(b.access_token.reveal() == "access-XYZ-value");
  CHECK(b.refresh_token.reveal() == "refresh-XYZ-value");
  CHECK(b.expires_at == sample().expires_at);
  CHECK(b.refresh_expires_at == sample().refresh_expires_at);
  CHECK(b.grant_id == "g1");
  auto raw = slurp(store.path_for("privicore"));
  CHECK(raw.find("XYZ") == std::string::npos);
  struct stat st{};
  ::stat(store.path_for("privicore").c_str(), &st);
  CHECK((st.st_mode & 0777) == 0600);
  ::stat((d.path + "/state").c_str(), &st);
  CHECK((st.st_mode & 0777) == 0700);
  CHECK_FALSE(std::filesystem::exists(store.path_for("privicore") + ".tmp"));
}

TEST_CASE("nothing_saved_loads_as_none") {
  tmpdir d;
  auto fs = file_store::open_dir(d.path, key_of('k'));
  REQUIRE(fs.has_value());
  auto loaded = run((*fs)->load("nothing"));
  REQUIRE(loaded.has_value());
  CHECK_FALSE(loaded->has_value());
}

TEST_CASE("tampered_truncated_swapped_or_wrong_key_state_is_refused_and_kept_aside") {
  tmpdir d;
  auto fs = file_store::open_dir(d.path, key_of('k'));
  REQUIRE(fs.has_value());
  auto& store = **fs;
  auto path = store.path_for("a");

  auto expect_refused = [&](const std::string& name, file_store& s) {
    auto r = run(s.load(name));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);
    CHECK(r.error().message.find(s.path_for(name)) != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(s.path_for(name)));  // moved aside, not deleted
    bool kept = false;
    for (auto& e : std::filesystem::directory_iterator(d.path))
      kept = kept || e.path().filename().string().starts_with(name + ".state.bad-");
    CHECK(kept);
  };

  SUBCASE("tampered") {
    REQUIRE(run(store.save("a", sample())).has_value());
    auto raw = slurp(path);
    raw[raw.size() / 2] ^= 1;
    std::ofstream(path, std::ios::binary) << raw;
    expect_refused("a", store);
  }
  SUBCASE("truncated") {
    REQUIRE(run(store.save("a", sample())).has_value());
    auto raw = slurp(path);
    std::ofstream(path, std::ios::binary) << raw.substr(0, 20);
    expect_refused("a", store);
  }
  SUBCASE("moved_from_another_credential") {
    REQUIRE(run(store.save("b", sample())).has_value());
    std::filesystem::rename(store.path_for("b"), path);
    expect_refused("a", store);
  }
  SUBCASE("wrong_key") {
    REQUIRE(run(store.save("a", sample())).has_value());
    auto other = file_store::open_dir(d.path, key_of('x'));
    REQUIRE(other.has_value());
    expect_refused("a", **other);
  }
}

TEST_CASE("a_save_waiting_for_the_disk_leaves_the_io_thread_serving") {
  // The daemon serves every client from one thread; a refresh's save waits for two fsyncs,
  // which take tens of milliseconds on a busy disk. Here the disk is held until the io thread
  // shows it went on running meanwhile.
  tmpdir d;
  auto fs = file_store::open_dir(d.path, key_of('k'));
  REQUIRE(fs.has_value());
  auto& store = **fs;
  std::promise<void> disk;
  auto disk_free = disk.get_future().share();
  std::atomic<int> syncs{0};
  std::atomic<bool> held_too_long{false};
  store.sync_with([&](int fd) {
    ++syncs;
    if (disk_free.wait_for(std::chrono::seconds{10}) != std::future_status::ready)
      held_too_long = true;  // nobody released it: the io thread was the one waiting
    return ::fsync(fd);
  });

  net::io_context io;
  bool saved = false, served_meanwhile = false;
  const std::string name = "a";  // save() holds its arguments by reference until it returns
  const auto bundle = sample();
  net::co_spawn(io, store.save(name, bundle), [&](std::exception_ptr e, result<void> r) {
    if (e) std::rethrow_exception(e);
    CHECK(r.has_value());
    saved = true;
  });
  auto meanwhile = [&]() -> awaitable<void> {
    net::steady_timer t(io);
    while (syncs == 0) {  // until the save is at the disk
      t.expires_after(std::chrono::milliseconds{1});
      co_await t.async_wait(net::use_awaitable);
    }
    served_meanwhile = !saved;
    disk.set_value();
  };
  net::co_spawn(io, meanwhile(), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
  CHECK(served_meanwhile);
  CHECK_FALSE(held_too_long);
  REQUIRE(saved);
  auto loaded = run(store.load("a"));
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->refresh_token.reveal() == "refresh-XYZ-value");
}

TEST_CASE("saves_reach_the_disk_in_the_order_they_were_asked_for") {
  tmpdir d;
  auto fs = file_store::open_dir(d.path, key_of('k'));
  REQUIRE(fs.has_value());
  auto& store = **fs;
  net::io_context io;
  int answered = 0;
  const std::string name = "a";
  std::vector<broker::token_bundle> bundles(20, sample());
  for (int i = 0; i < 20; ++i) {
    bundles[i].refresh_token = secret{"refresh-" + std::to_string(i)};
    net::co_spawn(io, store.save(name, bundles[i]), [&](std::exception_ptr e, result<void> r) {
      if (e) std::rethrow_exception(e);
      CHECK(r.has_value());
      ++answered;
    });
  }
  io.run();
  CHECK(answered == 20);
  auto loaded = run(store.load("a"));
  REQUIRE(loaded.has_value());
  REQUIRE(loaded->has_value());
  CHECK((*loaded)->refresh_token.reveal() == "refresh-19");
}

TEST_CASE("a_state_directory_others_can_write_is_refused") {
  tmpdir d;
  ::chmod(d.path.c_str(), 0777);
  auto fs = file_store::open_dir(d.path, key_of('k'));
  REQUIRE_FALSE(fs.has_value());
  CHECK(fs.error().message.find("writable by group or others") != std::string::npos);
}

TEST_CASE("state_keys_are_read_raw_hex_or_base64") {
  tmpdir d;
  auto write = [&](const std::string& name, const std::string& content) {
    auto p = d.path + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), 0600);
    return p;
  };
  auto raw = read_state_key(write("raw", std::string(32, 'a')));
  REQUIRE(raw.has_value());
  auto hex = read_state_key(write("hex", std::string(64, 'f') + "\n"));
  REQUIRE(hex.has_value());
  CHECK(hex->reveal() == std::string(32, '\xff'));
  auto b64 = read_state_key(write("b64", "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=\n"));
  REQUIRE(b64.has_value());
  CHECK(b64->reveal() == std::string(32, 'a'));
  CHECK_FALSE(read_state_key(write("short", "abc")).has_value());
  auto open = write("open", std::string(32, 'a'));
  ::chmod(open.c_str(), 0644);
  CHECK_FALSE(read_state_key(open).has_value());
}

// Found by fuzz_state_file: a `version` of another type threw out of decode_bundle (and so out of
// the credential's loop, which then never ran), and a float or huge timestamp overflowed the
// engine's clock arithmetic. Such records are refused like any malformed one.
TEST_CASE("records_with_mistyped_or_out_of_range_fields_are_refused_not_thrown") {
  auto good = nlohmann::json::parse(encode_bundle(sample()));
  REQUIRE(decode_bundle(good.dump()).has_value());
  for (const auto& change : std::vector<std::pair<std::string, nlohmann::json>>{
           {"version", "1"},
           {"version", nullptr},
           {"expires_at", 1.5e300},
           {"expires_at", -1},
           {"obtained_at", std::numeric_limits<std::int64_t>::max()},
           {"refresh_expires_at", "soon"},
           {"access_token", 5}}) {
    const std::string& key = change.first;  // not a structured binding: CAPTURE is a lambda
    CAPTURE(key);
    auto j = good;
    j[key] = change.second;
    auto r = decode_bundle(j.dump());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == errc::malformed);
  }
  CHECK_FALSE(decode_bundle("[]").has_value());
  CHECK_FALSE(decode_bundle("").has_value());
}
