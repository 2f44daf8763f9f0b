// A temporary directory under /tmp, removed with its contents at destruction. Paths stay short
// so unix socket paths inside it remain well under the 108-byte sun_path limit.
#pragma once

#include <string>

namespace tokenbroker::test {

class temp_dir {
 public:
  /// Creates /tmp/tb-XXXXXX (mode 0700); throws std::runtime_error on failure.
  temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir();

  const std::string& path() const noexcept { return path_; }
  /// path() + "/" + name.
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  /// Writes `content` to file(name) and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace tokenbroker::test
