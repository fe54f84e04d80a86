#pragma once
// Named numbers: the columns of metrics.csv and the counters and figures a checkpoint
// keeps. A struct lists its numbers once, by name, in a `visit(v)` member that calls
// v(name, field) per field (as settings do); reporting, saving and loading all go
// through that one list, so a column or a stored counter cannot drift from its value.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <torch/serialize/archive.h>

namespace tom {

// Numbers with their names, in the order they were added (e.g. one metrics row).
class Figures {
 public:
  // Appends one figure; a name given twice is a programming error (tom::Error).
  void operator()(std::string_view name, double value);
  // Appends the numbers a struct lists in its visit().
  template <class Fields>
  void add(const Fields& fields) {
    Fields copy = fields;  // visit() is written once for reading and writing, so it is not const
    copy.visit(*this);
  }
  const std::vector<std::string>& names() const { return names_; }
  const std::vector<double>& values() const { return values_; }

 private:
  std::vector<std::string> names_;
  std::vector<double> values_;
};

// Fills a struct's fields from the figures stored under `key`, one named entry each;
// throws tom::Error naming `what` and the first missing or malformed entry.
class FigureReader {
 public:
  FigureReader(torch::serialize::InputArchive& archive, const std::string& key, const char* what);
  void operator()(std::string_view name, double& value);
  void operator()(std::string_view name, std::int64_t& value);
  void operator()(std::string_view name, int& value);

 private:
  torch::serialize::InputArchive part_;
  std::string key_;
  const char* what_;
};

// Stores figures under `key`: one float64 entry per name.
void write_figures(torch::serialize::OutputArchive& archive, const std::string& key, const Figures& figures);

template <class Fields>
void save_fields(torch::serialize::OutputArchive& archive, const std::string& key, const Fields& fields) {
  Figures figures;
  figures.add(fields);
  write_figures(archive, key, figures);
}

template <class Fields>
void load_fields(torch::serialize::InputArchive& archive, const std::string& key, Fields& fields, const char* what) {
  FigureReader reader(archive, key, what);
  fields.visit(reader);
}

}  // namespace tom
