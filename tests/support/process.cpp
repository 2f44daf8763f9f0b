#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace tokenbroker::test {
namespace {

using steady = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::vector<std::string> merged_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    auto name = entry.substr(0, entry.find('='));
    if (!extra.count(name)) env.push_back(std::move(entry));
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> c_array(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

exit_status decode(int status) {
  exit_status s;
  if (WIFEXITED(status)) {
    s.exited = true;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.signal = WTERMSIG(status);
  }
  return s;
}

}  // namespace

std::string exit_status::describe() const {
  if (exited) return "exit code " + std::to_string(code);
  if (signal) return std::string("killed by signal ") + ::strsignal(signal);
  return "still running";
}

std::string bin_path(const std::string& name) {
  // TB_BIN_DIR in the environment: another tree's binaries (the sanitizer tree runs the gcc tree's
  // integration tests against its own daemons, TB_HARNESS_BIN_DIR in CMakeLists.txt).
  const char* dir = std::getenv("TB_BIN_DIR");
  return std::string(dir && *dir ? dir : TB_BIN_DIR) + "/" + name;
}

process::process(process_options o) {
  if (o.argv.empty()) throw std::invalid_argument("process: empty argv");
  stderr_path_ = o.stderr_path;
  if (stderr_path_.empty()) {
    char tmpl[] = "/tmp/tb-stderr-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) fail("mkstemp");
    ::close(fd);
    stderr_path_ = tmpl;
    owns_stderr_file_ = true;
  }
  int out[2], in[2] = {-1, -1}, exec_err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(exec_err, O_CLOEXEC) != 0) fail("pipe2");
  if (o.stdin_data && ::pipe2(in, O_CLOEXEC) != 0) fail("pipe2");
  auto env = merged_environment(o.env);
  auto envp = c_array(env);
  auto argv = c_array(o.argv);

  pid_ = ::fork();
  if (pid_ < 0) fail("fork");
  if (pid_ == 0) {
    // Child: only async-signal-safe calls from here on.
    int err_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in_fd = o.stdin_data ? in[0] : ::open("/dev/null", O_RDONLY);
    if (err_fd < 0 || in_fd < 0 || ::dup2(in_fd, 0) < 0 || ::dup2(out[1], 1) < 0 ||
        ::dup2(err_fd, 2) < 0) {
      int e = errno;
      (void)!::write(exec_err[1], &e, sizeof e);
      ::_exit(127);
    }
    ::signal(SIGPIPE, SIG_DFL);
    ::execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!::write(exec_err[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(exec_err[1]);
  if (in[0] >= 0) ::close(in[0]);
  stdout_fd_ = out[0];
  int child_errno = 0;
  auto n = ::read(exec_err[0], &child_errno, sizeof child_errno);
  ::close(exec_err[0]);
  if (n == sizeof child_errno) {
    if (in[1] >= 0) ::close(in[1]);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    errno = child_errno;
    fail("cannot execute " + o.argv[0]);
  }
  if (o.stdin_data) {
    // A thread so that a large input cannot deadlock against a child that writes first.
    stdin_writer_ = std::thread([fd = in[1], data = std::move(*o.stdin_data)] {
      std::size_t off = 0;
      while (off < data.size()) {
        auto w = ::write(fd, data.data() + off, data.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += static_cast<std::size_t>(w);
      }
      ::close(fd);
    });
  }
}

process::~process() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (stdin_writer_.joinable()) stdin_writer_.join();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  if (owns_stderr_file_) ::unlink(stderr_path_.c_str());
}

std::string process::stderr_text() const {
  std::ifstream in(stderr_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> process::read_line(milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    if (auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      lines_.push_back(line);
      return line;
    }
    if (stdout_eof_) return std::nullopt;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{stdout_fd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    char buf[4096];
    auto n = ::read(stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      stdout_eof_ = true;
      continue;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> process::wait_for_line(
    const std::function<bool(const std::string&)>& pred, milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - steady::now());
    auto line = read_line(left.count() > 0 ? left : milliseconds{0});
    if (!line) return std::nullopt;
    if (pred(*line)) return line;
  }
}

void process::kill(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

bool process::running() {
  return !wait_exit(milliseconds{0});
}

std::optional<exit_status> process::wait_exit(milliseconds timeout) {
  if (status_) return status_;
  if (pid_ <= 0) return std::nullopt;
  auto deadline = steady::now() + timeout;
  // No SIGCHLD plumbing in tests: poll waitpid with a short, bounded back-off.
  auto step = milliseconds{1};
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = decode(st);
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (steady::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(
        std::min(step, std::chrono::duration_cast<milliseconds>(deadline - steady::now())));
    step = std::min(step * 2, milliseconds{20});
  }
}

exit_status process::terminate(milliseconds grace) {
  kill(SIGTERM);
  if (auto s = wait_exit(grace)) return *s;
  kill(SIGKILL);
  if (auto s = wait_exit(std::chrono::seconds{10})) return *s;
  return exit_status{};
}

}  // namespace tokenbroker::test
