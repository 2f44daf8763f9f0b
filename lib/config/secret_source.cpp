#include "config/secret_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace tokenbroker::config {

std::string permission_problem(const std::string& path, unsigned mode) {
  if ((mode & 0077) == 0) return {};
  return fmt::format("{} has mode {:04o}: readable or writable by group or others; chmod 600 it",
                     path, mode & 07777);
}

std::string permission_error(const std::string& problem) {
  return problem + " (or set server.secret_permissions = \"warn\")";
}

secret_read read_secret_file_checked(const std::string& path, bool strict) {
  secret_read out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ELOOP) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // k8s links
  if (fd < 0) {
    out.problem = "cannot read " + path + ": " + std::strerror(errno);
    return out;
  }
  struct stat st{};
  ::fstat(fd, &st);
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    out.problem = path + " is not a regular file";
    return out;
  }
  if (st.st_size > 64 * 1024) {
    ::close(fd);
    out.problem = path + " is larger than 64 KiB; is it really a secret?";
    return out;
  }
  std::string perm_problem = permission_problem(path, st.st_mode);
  if (!perm_problem.empty() && strict) {
    ::close(fd);
    out.problem = permission_error(perm_problem);
    return out;
  }
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  ssize_t n = ::read(fd, data.data(), data.size());
  ::close(fd);
  if (n < 0) {
    out.problem = "cannot read " + path + ": " + std::strerror(errno);
    return out;
  }
  data.resize(static_cast<std::size_t>(n));
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  if (data.empty()) {
    out.problem = path + " is empty";
    return out;
  }
  out.value = secret{std::move(data)};
  out.problem = perm_problem;
  return out;
}

}  // namespace tokenbroker::config
