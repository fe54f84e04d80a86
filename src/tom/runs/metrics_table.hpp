#pragma once
// A CSV file of numbers with a header row: what a run writes (metrics.csv, weights.csv)
// and what the run loop, sweeps and results read back. No LibTorch here.
#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace tom::runs {

// Every cell must parse as a finite number or be empty (read as NaN, e.g. an objective
// column in a row where it does not apply).
struct NumericTable {
  std::filesystem::path file;
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;

  bool has(const std::string& column) const;
  // The column's index; throws tom::Error naming the file and the columns it has.
  std::size_t index(const std::string& column) const;
  // The column's values; throws naming the file, row and column of any empty/NaN cell
  // when `require_finite`.
  std::vector<double> column(const std::string& name, bool require_finite = true) const;
};
// Throws tom::Error naming the file for a missing file, an empty file, a row with the
// wrong number of cells, or a cell that is not a number.
NumericTable read_numeric_csv(const std::filesystem::path& file);
// The same from a stream; `file` names it in messages.
NumericTable parse_numeric_csv(std::istream& in, const std::filesystem::path& file);

}  // namespace tom::runs
