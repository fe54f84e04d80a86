#include "tom/runs/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tom/core/error.hpp"

namespace tom::runs {

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::string tmp_name = (dir / ("." + path.filename().string() + ".tmpXXXXXX")).string();
  const int fd = mkstemp(tmp_name.data());
  if (fd < 0) fail("cannot create a temporary file in {}: {}", dir.string(), std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp_name.c_str());
      fail("cannot write {}: {}", path.string(), reason);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp_name.c_str());
    fail("cannot flush {}: {}", path.string(), reason);
  }
  ::chmod(tmp_name.c_str(), 0644);
  if (std::rename(tmp_name.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp_name.c_str());
    fail("cannot replace {}: {}", path.string(), reason);
  }
  // Make the rename itself durable.
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}: {}", path.string(), std::strerror(errno));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace tom::runs
