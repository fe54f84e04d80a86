#pragma once
// Helpers for end-to-end tests that drive the `tom` program and read run directories.
#include <filesystem>
#include <string>
#include <vector>

namespace tom::test {

std::filesystem::path fresh_dir(const std::string& name);
// Runs `tom` with the arguments, waits, returns its exit status; output goes to `log`.
int run_tom(const std::vector<std::string>& args, const std::filesystem::path& log);
// metrics.csv as a header and rows of cells.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::size_t column(const std::string& name) const;
  double max_of(const std::string& name) const;  // largest value in that column
};
Csv read_csv(const std::filesystem::path& file);

}  // namespace tom::test
