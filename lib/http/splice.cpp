#include "http/splice.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace tokenbroker::http {

splice_pipe::splice_pipe(std::size_t want, std::size_t least) noexcept : least_(least) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;
  read_ = fds[0];
  write_ = fds[1];
  // Refused beyond the system's limits: the pipe keeps the size it has (64 KiB, or two pages
  // once the user's pipes hold fs.pipe-user-pages-soft).
  (void)::fcntl(write_, F_SETPIPE_SZ, static_cast<int>(std::min<std::size_t>(want, INT_MAX)));
  int size = ::fcntl(write_, F_GETPIPE_SZ);
  capacity_ = size > 0 ? static_cast<std::size_t>(size) : 0;
}

splice_pipe::~splice_pipe() {
  if (read_ >= 0) ::close(read_);
  if (write_ >= 0) ::close(write_);
}

long splice_pipe::fill(int fd, std::size_t n) noexcept {
  return static_cast<long>(
      ::splice(fd, nullptr, write_, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
}

long splice_pipe::drain(int fd, std::size_t n) noexcept {
  return static_cast<long>(
      ::splice(read_, nullptr, fd, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK));
}

}  // namespace tokenbroker::http
