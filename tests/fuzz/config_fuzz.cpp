// Fuzz target: the configuration loader (lib/config/config.hpp), TOML parsing and validation
// included. load() takes a path, so each input is written to a private temp file first. Secret
// files the input names are read as load() would read them (only private regular files are).
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "config/config.hpp"
#include "fuzz_support.hpp"

using namespace tokenbroker;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/tb-fuzz-config-" + std::to_string(::getpid()) + ".toml";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  fuzz::require(fd >= 0, "the temp file can be written");
  fuzz::require(::write(fd, data, size) == static_cast<ssize_t>(size), "the temp file is written");
  ::close(fd);
  auto cfg = config::load(path);
  if (cfg) {
    fuzz::require(!cfg->credentials.empty(), "a valid config has a credential");
    for (const auto& c : cfg->credentials) fuzz::require(!c.name.empty(), "credentials are named");
  } else {
    fuzz::require(cfg.error().message.find(path) != std::string::npos,
                  "every problem names the file");
  }
  return 0;
}
