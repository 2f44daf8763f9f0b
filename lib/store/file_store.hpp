// Tokens persisted in state_dir, one file per credential, encrypted with AES-256-GCM under the
// state key with the credential name as associated data (a file cannot be moved to another
// credential). Writes are crash-safe: temp file, fsync, rename, directory fsync.
#pragma once

#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <string>

#include "core/secret.hpp"
#include "store/store.hpp"

namespace tokenbroker::store {

/// Reads a 32-byte key given raw, as 64 hex digits, or in base64 (trailing newline ignored).
result<secret> read_state_key(const std::string& path);

/// Encrypts `plaintext` for `credential`: "TBS1" | 12-byte nonce | ciphertext | 16-byte tag.
std::string seal(const secret& key, const std::string& credential, const std::string& plaintext);
/// The inverse of seal(); errc::malformed for a truncated, tampered or wrong-key record.
result<std::string> open(const secret& key, const std::string& credential, std::string_view sealed);

/// A bundle as the JSON that is encrypted (and its inverse).
std::string encode_bundle(const broker::token_bundle& b);
result<broker::token_bundle> decode_bundle(std::string_view json);

/// The file system's part of every load, save and erase runs on the store's own thread: a save
/// waits for two fsyncs (tens of milliseconds on a busy disk), and the io_context's thread goes
/// on serving meanwhile. One thread, so the operations reach the disk in the order they were
/// asked for.
class file_store final : public state_store {
 public:
  /// Creates `dir` (0700) if missing. Refuses a directory that group or others can write, or
  /// that another user owns.
  static result<std::unique_ptr<file_store>> open_dir(const std::string& dir, secret key);

  awaitable<result<std::optional<broker::token_bundle>>> load(const std::string& credential) override;
  awaitable<result<void>> save(const std::string& credential,
                               const broker::token_bundle& bundle) override;
  awaitable<result<void>> erase(const std::string& credential) override;

  std::string path_for(const std::string& credential) const;

  /// What makes a written file durable: ::fsync, or a test's stand-in (set before the first save).
  void sync_with(std::function<int(int fd)> sync) { sync_ = std::move(sync); }

  /// Finishes every operation already asked for: nothing asked to be saved is dropped.
  ~file_store() override { pool_.join(); }

 private:
  file_store(std::string dir, secret key) : dir_(std::move(dir)), key_(std::move(key)) {}
  result<std::optional<broker::token_bundle>> read_record(const std::string& credential) const;
  result<void> write_record(const std::string& credential, const std::string& sealed) const;

  std::string dir_;
  secret key_;
  std::function<int(int)> sync_ = ::fsync;
  boost::asio::thread_pool pool_{1};
};

}  // namespace tokenbroker::store
