#pragma once
// Input checks shared by the models: every bad tensor or setting becomes a tom::Error
// that names it.
#include <string>

#include <torch/torch.h>

#include "tom/core/settings.hpp"

namespace tom::models {

// "[256, 11]"
std::string shape_of(const torch::Tensor& tensor);

// Throws tom::Error unless `tensor` is a defined floating-point tensor whose shape
// matches `sizes` (entries < 0 match any size) and whose entries are all finite.
void check_tensor(const torch::Tensor& tensor, const std::string& name, std::vector<std::int64_t> sizes);

// Visitor for check_settings: range-checks numbers, checks strings against their allowed
// values, accepts unconstrained fields (flags).
struct SettingsChecker {
  template <class T>
  void operator()(const std::string& name, T& value, const char*, const Range& range) {
    range.check(name, static_cast<double>(value));
  }
  void operator()(const std::string& name, std::string& value, const char*, const OneOf& allowed) {
    allowed.check(name, value);
  }
  template <class T>
  void operator()(const std::string&, T&, const char*) {}
};

// Checks every field of a settings struct; throws tom::Error naming the first bad one.
template <class Settings>
void check_settings(Settings& settings) {
  SettingsChecker checker;
  settings.visit(checker);
}

}  // namespace tom::models
