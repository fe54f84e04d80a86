#pragma once
// File handling for run directories. Every failure is a tom::Error that names the path,
// the system's reason and what the user can do about it (permissions, a full disk, a
// read-only file system, a missing parent...), never a bare std::filesystem error.
#include <filesystem>
#include <string>
#include <vector>

#include "tom/core/error.hpp"

namespace tom::runs {

// What to do about the system error `err` (errno) on a path, e.g. for ENOSPC "free some
// space on that disk or choose a directory on another one"; empty if there is no advice.
std::string io_advice(int err);

// Throws tom::Error "<what>: <strerror(err)>; <advice><after>".
[[noreturn]] void fail_io_message(int err, const std::string& what, const std::string& after = "");
template <typename... Args>
[[noreturn]] void fail_io(int err, fmt::format_string<Args...> format, Args&&... args) {
  fail_io_message(err, fmt::format(format, std::forward<Args>(args)...));
}

// Writes `bytes` to `path` atomically: a temporary file in the same directory, flushed
// to disk, then renamed over `path`. A crash leaves either the old file or the new one
// (and at most a stale temporary, see remove_stale_temporaries).
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

// Reads a whole file; throws tom::Error naming the path if it cannot.
std::string read_file(const std::filesystem::path& path);

// Creates `dir` and its parents if missing; `what` names it in messages ("run directory").
void make_directory(const std::filesystem::path& dir, const char* what);

// Whether `path` exists; an error other than "does not exist" (e.g. no permission to
// look) is a tom::Error naming the path.
bool path_exists(const std::filesystem::path& path);

// The names of the entries of directory `dir`; tom::Error naming it if unreadable.
std::vector<std::string> directory_entries(const std::filesystem::path& dir);

// Removes the temporaries write_file_atomic leaves when killed mid-write. Only the
// directory's one writer (holding its RunLock) may call this.
void remove_stale_temporaries(const std::filesystem::path& dir);

// Appends whole lines to a file, each with a single write(2), so a reader or a kill sees
// a line entirely or not at all (a kill can at worst leave one unterminated last line).
class LineAppender {
 public:
  explicit LineAppender(const std::filesystem::path& path);
  ~LineAppender();
  LineAppender(const LineAppender&) = delete;
  LineAppender& operator=(const LineAppender&) = delete;
  void append_line(const std::string& line);  // adds the '\n'

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace tom::runs
