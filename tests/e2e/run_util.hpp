#pragma once
// Helpers for end-to-end tests that drive the `tom` program and read run directories.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tom::test {

std::filesystem::path fresh_dir(const std::string& name);
// Runs `tom` with the arguments, waits, returns its exit status; output goes to `log`.
int run_tom(const std::vector<std::string>& args, const std::filesystem::path& log);
// The same in directory `cwd`, standard output into `out` and errors into `errors` (which
// may be the same file).
int run_tom_in(const std::filesystem::path& cwd, const std::vector<std::string>& args,
               const std::filesystem::path& out, const std::filesystem::path& errors);
// metrics.csv as a header and rows of cells.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::size_t column(const std::string& name) const;
  double max_of(const std::string& name) const;  // largest value in that column
};
Csv read_csv(const std::filesystem::path& file);
// A run started with --stop-at-return `target` and --steps `budget` that learned: its
// metrics end at the first evaluation reaching the target, before the budget, and
// `tom train --resume` then has nothing to do. Reports failures; returns that step (0 when
// the target was never reached).
std::int64_t expect_stopped_at_target(const std::filesystem::path& dir, double target, std::int64_t budget);
// The whole file as text ("" when it cannot be read).
std::string read_text(const std::filesystem::path& file);
// Two CSV files (metrics.csv, weights.csv) hold the same header, rows and cells, byte
// for byte, except in the timing columns (wall_s, steps_per_s, time_*); each difference
// is reported as a test failure (the first 20).
void expect_same_cells(const std::filesystem::path& expected_file, const std::filesystem::path& actual_file);

}  // namespace tom::test
