#include "tom/runs/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

namespace tom::runs {
namespace fs = std::filesystem;

std::string io_advice(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return "check the permissions of that path, or choose a directory you can write";
    case EROFS:
      return "that file system is read-only; choose a directory on a writable one";
    case ENOSPC:
      return "the disk is full; free some space on it, or choose a directory on another disk";
    case EDQUOT:
      return "your disk quota is used up; free some space, or choose a directory elsewhere";
    case EFBIG:
      return "the file size limit (ulimit -f) was reached; raise it, or choose smaller settings";
    case ENOENT:
      return "something on that path does not exist; check the path (a new directory needs an existing parent)";
    case ENOTDIR:
      return "a part of that path is a file, not a directory; choose another path";
    case EISDIR:
      return "that path is a directory, not a file; check the path";
    case ENAMETOOLONG:
      return "the path is too long; choose a shorter one";
    case EMFILE:
    case ENFILE:
      return "too many files are open; close other programs or raise the limit (ulimit -n)";
    case EIO:
      return "the disk reported an I/O error; check the disk";
    default:
      return "";
  }
}

void fail_io_message(int err, const std::string& what, const std::string& after) {
  const std::string advice = io_advice(err);
  throw Error(what + ": " + std::strerror(err) + (advice.empty() ? "" : "; " + advice) + after);
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  const auto dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string tmp_name = (dir / ("." + path.filename().string() + ".tmpXXXXXX")).string();
  const int fd = mkstemp(tmp_name.data());
  if (fd < 0) fail_io(errno, "cannot create a temporary file in {} (to write {})", dir.string(), path.string());
  const auto give_up = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp_name.c_str());
    fail_io_message(err, fmt::format("cannot {} {}", what, path.string()), " (the previous version, if any, is kept)");
  };
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      give_up("write");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) give_up("flush");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_name.c_str());
    fail_io_message(err, "cannot flush " + path.string(), " (the previous version, if any, is kept)");
  }
  ::chmod(tmp_name.c_str(), 0644);
  if (std::rename(tmp_name.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_name.c_str());
    fail_io(err, "cannot replace {}", path.string());
  }
  // Make the rename itself durable.
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::string read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_io(errno, "cannot read {}", path.string());
  std::string bytes;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail_io(err, "cannot read {}", path.string());
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return bytes;
}

void make_directory(const fs::path& dir, const char* what) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail_io(ec.value(), "cannot create the {} {}", what, dir.string());
  if (!fs::is_directory(dir, ec)) fail_io(ENOTDIR, "cannot use {} as the {}", dir.string(), what);
}

bool path_exists(const fs::path& path) {
  std::error_code ec;
  const bool exists = fs::exists(path, ec);
  if (ec) fail_io(ec.value(), "cannot look at {}", path.string());
  return exists;
}

std::vector<std::string> directory_entries(const fs::path& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) fail_io(ec.value(), "cannot list the directory {}", dir.string());
  return names;
}

void remove_stale_temporaries(const fs::path& dir) {
  for (const auto& name : directory_entries(dir))
    if (name.starts_with(".") && name.size() > 10 && name.substr(name.size() - 10, 4) == ".tmp")
      ::unlink((dir / name).c_str());  // best effort: a leftover only costs space
}

LineAppender::LineAppender(const fs::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_io(errno, "cannot open {} to append to it", path.string());
}

LineAppender::~LineAppender() {
  if (fd_ >= 0) ::close(fd_);
}

void LineAppender::append_line(const std::string& line) {
  const std::string bytes = line + "\n";
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + written, bytes.size() - written);
    if (n > 0) {
      written += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      const int err = n < 0 ? errno : EIO;
      // Take back the partial line, so the file stays whole lines.
      struct stat st {};
      if (written > 0 && ::fstat(fd_, &st) == 0) (void)!::ftruncate(fd_, st.st_size - static_cast<off_t>(written));
      fail_io(err, "cannot append to {}", path_.string());
    }
  }
}

}  // namespace tom::runs
