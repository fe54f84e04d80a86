#pragma once
// Small helpers shared by the unit tests of every piece (header-only: each test binary
// is its own program).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "tom/core/error.hpp"
#include "tom/core/figures.hpp"

namespace tom::test {

// An empty directory under the system's temporary directory, unique to this process.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("tom_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Writes `text` to `file`, creating its directory.
inline void write_text(const std::filesystem::path& file, const std::string& text) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << text;
}

// The message of the tom::Error that `f` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const tom::Error& e) {
    return e.what();
  }
  return "";
}

// What `reporter.report(figures)` reports (a trainer's or objective's metrics).
template <class Reporter>
tom::Figures figures_of(const Reporter& reporter) {
  tom::Figures figures;
  reporter.report(figures);
  return figures;
}

}  // namespace tom::test
