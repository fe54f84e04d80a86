#include "tom/runs/metrics_table.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tom/core/error.hpp"

namespace fs = std::filesystem;

namespace tom::runs {
namespace {

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::stringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  return s;
}

}  // namespace

bool NumericTable::has(const std::string& column) const {
  return std::find(header.begin(), header.end(), column) != header.end();
}

std::size_t NumericTable::index(const std::string& column) const {
  const auto it = std::find(header.begin(), header.end(), column);
  if (it == header.end()) fail("{} has no column '{}' (its columns: {})", file.string(), column, join(header));
  return static_cast<std::size_t>(it - header.begin());
}

std::vector<double> NumericTable::column(const std::string& name, bool require_finite) const {
  const std::size_t c = index(name);
  std::vector<double> out;
  out.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const double v = rows[r][c];
    if (require_finite && !std::isfinite(v))
      fail("{}, line {}: column '{}' is {} (a finite number is needed)", file.string(), r + 2, name,
           std::isnan(v) ? "empty or NaN" : "infinite");
    out.push_back(v);
  }
  return out;
}

NumericTable read_numeric_csv(const fs::path& file) {
  std::ifstream in(file);
  if (!in) fail("cannot read {}: {}", file.string(), fs::exists(file) ? "not readable" : "no such file");
  return parse_numeric_csv(in, file);
}

NumericTable parse_numeric_csv(std::istream& in, const fs::path& file) {
  NumericTable table;
  table.file = file;
  std::string line;
  if (!std::getline(in, line) || trim(line).empty()) fail("{} is empty (no header row)", file.string());
  for (auto& name : split_line(trim(line))) table.header.push_back(trim(name));
  std::size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line);
    if (line.empty()) continue;
    const auto cells = split_line(line);
    if (cells.size() != table.header.size())
      fail("{}, line {}: {} cells where the header has {} columns (a truncated or foreign file?)", file.string(),
           line_no, cells.size(), table.header.size());
    std::vector<double> row;
    row.reserve(cells.size());
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string cell = trim(cells[c]);
      if (cell.empty()) {
        row.push_back(std::nan(""));
        continue;
      }
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(cell.c_str(), &end);
      if (end != cell.c_str() + cell.size())
        fail("{}, line {}: column '{}' holds '{}', not a number", file.string(), line_no, table.header[c], cell);
      row.push_back(v);
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

}  // namespace tom::runs
