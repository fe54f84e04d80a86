#pragma once
// One writer per run directory. `tom train` holds an exclusive flock on DIR/writer.lock
// for its whole life; the kernel drops it when the process ends in any way (even
// SIGKILL), so a crashed run never blocks its resume. Readers (`tom eval`) never take it:
// every file they read is replaced atomically or only appended to in whole lines.
#include <filesystem>
#include <optional>
#include <string>

namespace tom::runs {

inline constexpr const char* kLockFile = "writer.lock";

class RunLock {
 public:
  // Takes the lock of the existing directory `dir`, or throws tom::Error naming the
  // process that holds it (pid, host, start time) and what to do.
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// Who holds the lock of `dir` right now ("pid 12 on host h, started ..."), or nothing if
// no process does. Takes no lock itself.
std::optional<std::string> run_lock_holder(const std::filesystem::path& dir);

}  // namespace tom::runs
