#include "store/file_store.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "core/offload.hpp"
#include "core/time.hpp"

namespace tokenbroker::store {
namespace {

constexpr std::string_view magic = "TBS1";
constexpr std::size_t nonce_len = 12, tag_len = 16;

std::string aad_for(const std::string& credential) { return "tokenbroker-state-v1:" + credential; }

error io_failure(const std::string& what, const std::string& path) {
  return make_error(errc::io, what + " " + path + ": " + std::strerror(errno));
}

std::optional<std::string> decode_hex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    auto v = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = v(s[i]), lo = v(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

std::optional<std::string> decode_base64(std::string_view s) {
  std::string out(s.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return std::nullopt;
  std::size_t len = static_cast<std::size_t>(n);
  for (auto it = s.rbegin(); it != s.rend() && *it == '='; ++it) --len;  // padding
  out.resize(len);
  return out;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

result<secret> read_state_key(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_failure("cannot read state key", path);
  struct stat st{};
  ::fstat(fd, &st);
  if (st.st_mode & 0077) {
    ::close(fd);
    return make_error(errc::io, "state key " + path + " is readable or writable by group or "
                                "others; chmod 600 it");
  }
  std::string raw(256, '\0');
  ssize_t n = ::read(fd, raw.data(), raw.size());
  ::close(fd);
  if (n < 0) return io_failure("cannot read state key", path);
  raw.resize(static_cast<std::size_t>(n));
  if (raw.size() == 32) return secret{raw};
  while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r' || raw.back() == ' ')) raw.pop_back();
  if (raw.size() == 64)
    if (auto h = decode_hex(raw)) return secret{*h};
  if (auto b = decode_base64(raw); b && b->size() == 32) return secret{*b};
  return make_error(errc::invalid_argument,
                    "state key " + path + " must hold 32 bytes: raw, 64 hex digits or base64");
}

std::string seal(const secret& key, const std::string& credential, const std::string& plaintext) {
  unsigned char nonce[nonce_len];
  if (RAND_bytes(nonce, sizeof nonce) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string out(magic);
  out.append(reinterpret_cast<char*>(nonce), nonce_len);
  std::string cipher(plaintext.size() + 16, '\0');
  auto aad = aad_for(credential);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0, total = 0;
  bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                                      reinterpret_cast<const unsigned char*>(key.reveal().data()),
                                      nonce) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(cipher.data()), &len,
                              reinterpret_cast<const unsigned char*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(cipher.data()) + total, &len) == 1;
  total += len;
  unsigned char tag[tag_len];
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, tag_len, tag) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) throw std::runtime_error("AES-256-GCM encryption failed");
  cipher.resize(static_cast<std::size_t>(total));
  out += cipher;
  out.append(reinterpret_cast<char*>(tag), tag_len);
  return out;
}

result<std::string> open(const secret& key, const std::string& credential, std::string_view sealed) {
  if (sealed.size() < magic.size() + nonce_len + tag_len || sealed.substr(0, magic.size()) != magic)
    return make_error(errc::malformed, "not a tokenbroker state record (truncated or foreign)");
  auto nonce = sealed.substr(magic.size(), nonce_len);
  auto body = sealed.substr(magic.size() + nonce_len, sealed.size() - magic.size() - nonce_len - tag_len);
  auto tag = sealed.substr(sealed.size() - tag_len);
  auto aad = aad_for(credential);
  std::string plain(body.size() + 16, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0, total = 0;
  bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                                      reinterpret_cast<const unsigned char*>(key.reveal().data()),
                                      reinterpret_cast<const unsigned char*>(nonce.data())) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(plain.data()), &len,
                              reinterpret_cast<const unsigned char*>(body.data()),
                              static_cast<int>(body.size())) == 1;
  total = len;
  ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, tag_len,
                                 const_cast<char*>(tag.data())) == 1 &&
       EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(plain.data()) + total, &len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return make_error(errc::malformed, "state record does not authenticate (tampered, moved from "
                                       "another credential, or encrypted under another key)");
  }
  plain.resize(static_cast<std::size_t>(total + len));
  return plain;
}

std::string encode_bundle(const broker::token_bundle& b) {
  nlohmann::json j{{"version", 1},
                   {"access_token", b.access_token.reveal()},
                   {"token_type", b.token_type},
                   {"scope", b.scope},
                   {"expires_at", b.expires_at.time_since_epoch().count()},
                   {"obtained_at", b.obtained_at.time_since_epoch().count()},
                   {"refresh_token", b.refresh_token.reveal()},
                   {"grant_id", b.grant_id}};
  if (b.refresh_expires_at) j["refresh_expires_at"] = b.refresh_expires_at->time_since_epoch().count();
  return j.dump();
}

result<broker::token_bundle> decode_bundle(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  auto version = j.is_object() ? j.find("version") : j.end();
  if (!j.is_object() || version == j.end() || *version != 1)
    return make_error(errc::malformed, "state record has an unknown layout");
  // Timestamps are whole seconds between 1970 and 9999: anything else (a float, a huge value)
  // would overflow the engine's nanosecond clock arithmetic.
  struct out_of_range {};
  auto timestamp = [&](const char* key) {
    const auto& v = j.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 253402300799)
      throw out_of_range{};
    return sys_seconds{std::chrono::seconds{v.get<std::int64_t>()}};
  };
  try {
    broker::token_bundle b;
    b.access_token = secret{j.at("access_token").get<std::string>()};
    b.token_type = j.at("token_type").get<std::string>();
    b.scope = j.at("scope").get<std::string>();
    b.expires_at = timestamp("expires_at");
    b.obtained_at = timestamp("obtained_at");
    b.refresh_token = secret{j.at("refresh_token").get<std::string>()};
    b.grant_id = j.at("grant_id").get<std::string>();
    if (j.contains("refresh_expires_at")) b.refresh_expires_at = timestamp("refresh_expires_at");
    return b;
  } catch (const nlohmann::json::exception&) {
    return make_error(errc::malformed, "state record is missing fields");
  } catch (const out_of_range&) {
    return make_error(errc::malformed, "state record has a timestamp out of range");
  }
}

result<std::unique_ptr<file_store>> file_store::open_dir(const std::string& dir, secret key) {
  if (key.reveal().size() != 32)
    return make_error(errc::invalid_argument, "the state key must be 32 bytes");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return io_failure("cannot create state directory", dir);
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) return io_failure("cannot use state directory", dir);
  if (!S_ISDIR(st.st_mode)) return make_error(errc::io, "state_dir " + dir + " is not a directory");
  if (st.st_uid != ::geteuid())
    return make_error(errc::io, "state_dir " + dir + " belongs to another user");
  if (st.st_mode & 0022)
    return make_error(errc::io, "state_dir " + dir + " is writable by group or others; chmod 700 it");
  if (st.st_mode & 0077) ::chmod(dir.c_str(), 0700);
  return std::unique_ptr<file_store>(new file_store(dir, std::move(key)));
}

std::string file_store::path_for(const std::string& credential) const {
  return dir_ + "/" + credential + ".state";
}

awaitable<result<std::optional<broker::token_bundle>>> file_store::load(const std::string& credential) {
  // Named, not a temporary in the co_await'ed call: g++ 12 destroys such a temporary twice.
  auto job = [this, credential] { return read_record(credential); };
  co_return co_await offload(pool_, std::move(job));
}

result<std::optional<broker::token_bundle>> file_store::read_record(
    const std::string& credential) const {
  auto path = path_for(credential);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<broker::token_bundle>{};
    return io_failure("cannot read", path);
  }
  std::string data;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && data.size() < 1024 * 1024;)
    data.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  auto plain = open(key_, credential, data);
  result<broker::token_bundle> bundle = plain ? decode_bundle(*plain) : result<broker::token_bundle>(plain.error());
  if (plain) OPENSSL_cleanse(plain->data(), plain->size());
  if (!bundle) {
    // Keep the bad file for inspection; the credential starts over without it.
    auto aside = path + ".bad-" + std::to_string(std::time(nullptr));
    ::rename(path.c_str(), aside.c_str());
    return make_error(errc::malformed, path + ": " + bundle.error().message + "; kept as " + aside);
  }
  return std::optional<broker::token_bundle>{std::move(*bundle)};
}

awaitable<result<void>> file_store::save(const std::string& credential,
                                         const broker::token_bundle& bundle) {
  auto plain = encode_bundle(bundle);
  auto sealed = seal(key_, credential, plain);
  OPENSSL_cleanse(plain.data(), plain.size());
  auto job = [this, credential, sealed = std::move(sealed)] {
    return write_record(credential, sealed);
  };
  co_return co_await offload(pool_, std::move(job));
}

result<void> file_store::write_record(const std::string& credential,
                                      const std::string& sealed) const {
  auto path = path_for(credential);
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return io_failure("cannot write", tmp);
  bool ok = write_all(fd, sealed) && sync_(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    auto e = io_failure("cannot write", path);
    ::unlink(tmp.c_str());
    return e;
  }
  // The rename is durable only once the directory entry is on disk.
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    sync_(dfd);
    ::close(dfd);
  }
  return {};
}

awaitable<result<void>> file_store::erase(const std::string& credential) {
  auto job = [path = path_for(credential)]() -> result<void> {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_failure("cannot remove", path);
    return {};
  };
  co_return co_await offload(pool_, std::move(job));
}

}  // namespace tokenbroker::store
