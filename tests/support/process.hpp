// A child process for integration tests: fork/execve with argv and extra environment, optional
// stdin data, stdout captured line by line (wait for a line with a deadline, never a sleep),
// stderr to a file kept for diagnostics. The destructor kills a child still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tokenbroker::test {

using std::chrono::milliseconds;

struct process_options {
  std::vector<std::string> argv;  // argv[0] is the program: a path, or a name looked up in PATH
  std::map<std::string, std::string> env;  // added to (or replacing in) the parent's environment
  std::optional<std::string> stdin_data;   // written then closed; stdin is /dev/null otherwise
  std::string stderr_path;                 // stderr goes there (truncated); a temp file when empty
};

/// How a child ended: exit code or the signal that killed it.
struct exit_status {
  bool exited = false;
  int code = -1;   // when exited
  int signal = 0;  // when killed by a signal
  bool ok() const { return exited && code == 0; }
  std::string describe() const;
};

class process {
 public:
  /// Starts the child; throws std::runtime_error if it cannot be executed.
  explicit process(process_options options);
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  /// Kills (SIGKILL) and reaps the child if still running.
  ~process();

  pid_t pid() const noexcept { return pid_; }
  const std::string& stderr_path() const noexcept { return stderr_path_; }
  /// The whole stderr so far (for failure messages).
  std::string stderr_text() const;

  /// The next stdout line (without '\n'), or nullopt at EOF or when `timeout` passes.
  std::optional<std::string> read_line(milliseconds timeout);
  /// Reads lines until one satisfies `pred` (returned) or `timeout` passes / EOF (nullopt).
  std::optional<std::string> wait_for_line(const std::function<bool(const std::string&)>& pred,
                                           milliseconds timeout);
  /// Every stdout line read so far.
  const std::vector<std::string>& lines() const noexcept { return lines_; }

  /// Sends `sig` to the child (no-op once reaped).
  void kill(int sig);
  /// Waits for the child to end, up to `timeout`; nullopt if still running.
  std::optional<exit_status> wait_exit(milliseconds timeout);
  /// SIGTERM, then SIGKILL if still running after `grace`; returns how it ended.
  exit_status terminate(milliseconds grace = std::chrono::seconds{5});
  bool running();

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stderr_path_;
  bool owns_stderr_file_ = false;
  std::string pending_;  // stdout bytes after the last complete line
  bool stdout_eof_ = false;
  std::vector<std::string> lines_;
  std::optional<exit_status> status_;
  std::thread stdin_writer_;
};

/// Absolute path of a binary of this build (TB_BIN_DIR), e.g. bin_path("privicore-sim").
std::string bin_path(const std::string& name);

}  // namespace tokenbroker::test
