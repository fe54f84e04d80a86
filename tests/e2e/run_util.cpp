#include "run_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tom::test {

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("tom_e2e_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

int run_tom(const std::vector<std::string>& args, const std::filesystem::path& log) {
  return run_tom_in(std::filesystem::current_path(), args, log, log);
}

int run_tom_in(const std::filesystem::path& cwd, const std::vector<std::string>& args,
               const std::filesystem::path& out, const std::filesystem::path& errors) {
  // Resolved here: the child changes directory before opening them.
  const auto out_file = std::filesystem::absolute(out), errors_file = std::filesystem::absolute(errors);
  const pid_t pid = fork();
  if (pid == 0) {
    if (::chdir(cwd.c_str()) != 0) _exit(126);
    const int out_fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd =
        errors_file == out_file ? out_fd : ::open(errors_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0 || err_fd < 0) _exit(125);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    std::vector<char*> argv;
    std::string program = TOM_BINARY_DIR "/tom";
    argv.push_back(program.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::size_t Csv::column(const std::string& name) const {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  throw std::runtime_error("no column " + name);
}

Csv read_csv(const std::filesystem::path& file) {
  std::ifstream in(file);
  Csv csv;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    std::string cell;
    while (std::getline(cells_in, cell, ',')) cells.push_back(cell);
    if (first) csv.header = cells, first = false;
    else csv.rows.push_back(cells);
  }
  return csv;
}

double Csv::max_of(const std::string& name) const {
  const std::size_t c = column(name);
  double best = -std::numeric_limits<double>::infinity();
  for (const auto& row : rows) best = std::max(best, std::stod(row[c]));
  return best;
}

std::int64_t expect_stopped_at_target(const std::filesystem::path& dir, double target, std::int64_t budget) {
  const Csv metrics = read_csv(dir / "metrics.csv");
  const std::size_t step_column = metrics.column("step"), return_column = metrics.column("eval_return_mean");
  std::int64_t reached = 0;
  for (const auto& row : metrics.rows) {
    EXPECT_EQ(reached, 0) << "the run went on after reaching its target at step " << reached;
    if (std::stod(row[return_column]) >= target) reached = std::stoll(row[step_column]);
  }
  EXPECT_GT(reached, 0) << "no evaluation reached " << target << " in " << budget << " steps";
  EXPECT_LT(reached, budget) << "the target was reached only at the budget, so stopping saved nothing";
  const std::filesystem::path log = dir.string() + ".resume.log";
  EXPECT_EQ(run_tom({"train", "--resume", dir.string()}, log), 0);
  EXPECT_NE(read_text(log).find("reached the target"), std::string::npos) << read_text(log);
  return reached;
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

namespace {
bool is_timing(const std::string& column) {
  return column == "wall_s" || column == "steps_per_s" || column.starts_with("time_");
}
}  // namespace

void expect_same_cells(const std::filesystem::path& expected_file, const std::filesystem::path& actual_file) {
  const auto expected = read_csv(expected_file), actual = read_csv(actual_file);
  const std::string name = expected_file.filename().string();
  ASSERT_EQ(expected.header, actual.header) << name;
  EXPECT_EQ(expected.rows.size(), actual.rows.size()) << name;
  int shown = 0;
  for (std::size_t r = 0; r < std::min(expected.rows.size(), actual.rows.size()); ++r) {
    ASSERT_EQ(expected.rows[r].size(), actual.rows[r].size()) << name << " row " << r;
    for (std::size_t c = 0; c < expected.header.size(); ++c)
      if (!is_timing(expected.header[c]) && expected.rows[r][c] != actual.rows[r][c] && shown++ < 20)
        ADD_FAILURE() << name << " step " << expected.rows[r][0] << ", " << expected.header[c] << ": expected "
                      << expected.rows[r][c] << ", got " << actual.rows[r][c];
  }
}

}  // namespace tom::test
