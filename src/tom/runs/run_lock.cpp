#include "tom/runs/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "tom/core/error.hpp"
#include "tom/runs/files.hpp"

namespace tom::runs {
namespace {

std::string read_holder(int fd) {
  char buffer[512];
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string text(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  // The holder writes its line right after locking; an empty file means it is about to.
  return text.empty() ? "a process that has not yet written its name" : text;
}

std::string describe_self() {
  char host[256] = "?";
  ::gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  return fmt::format("pid {} on host {}, started {:%Y-%m-%d %H:%M:%S} UTC", ::getpid(), host, now);
}

}  // namespace

RunLock::RunLock(const std::filesystem::path& dir) {
  const auto path = dir / kLockFile;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_io(errno, "cannot create the run's lock file {}", path.string());
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder = err == EWOULDBLOCK ? read_holder(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) fail_io(err, "cannot lock {}", path.string());
    fail("{} is being written by another tom train ({}); only one process may write a run. Wait for it to "
         "finish, or stop it (kill {}) and then continue with tom train --resume {}",
         dir.string(), holder, holder.starts_with("pid ") ? holder.substr(4, holder.find(' ', 4) - 4) : "<pid>",
         dir.string());
  }
  const std::string me = describe_self() + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size())) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    fail_io(err, "cannot write the run's lock file {}", path.string());
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock; the file stays for the next writer
}

std::optional<std::string> run_lock_holder(const std::filesystem::path& dir) {
  const int fd = ::open((dir / kLockFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<std::string> holder;
  // A shared probe lock conflicts only with a writer's exclusive one; released at once.
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) holder = read_holder(fd);
  ::close(fd);
  return holder;
}

}  // namespace tom::runs
