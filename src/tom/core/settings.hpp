#pragma once
// Settings structs describe their fields once, and every generic operation (config
// files, command-line overrides, range checks, writing the resolved config, checkpoint
// compatibility) is written once against that description:
//
//   struct SacSettings {
//     double lr = 3e-4;
//     int batch_size = 256;
//     std::string device = "cpu";
//     template <class V> void visit(V& v) {
//       v("lr", lr, "Adam learning rate", Range::positive());
//       v("batch_size", batch_size, "transitions per update", Range::at_least(1));
//       v("device", device, "cpu or cuda", OneOf{"cpu", "cuda"});
//     }
//   };
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tom/core/error.hpp"

namespace tom {

// Closed or open numeric interval for a setting.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false;
  static Range any() { return {}; }
  static Range positive() { return {0.0, std::numeric_limits<double>::infinity(), true}; }
  static Range at_least(double lo) { return {lo}; }
  static Range between(double lo, double hi) { return {lo, hi}; }
  static Range probability() { return {0.0, 1.0}; }

  // Throws tom::Error naming the setting when `value` is NaN/inf or outside the range.
  void check(const std::string& name, double value) const;
};

// The allowed values of a string setting.
struct OneOf {
  std::vector<std::string> values;
  OneOf(std::initializer_list<std::string> allowed) : values(allowed) {}
  explicit OneOf(std::vector<std::string> allowed) : values(std::move(allowed)) {}
  void check(const std::string& name, const std::string& value) const;
};

// One field of a settings struct, seen through visit(): generic code (config files,
// overrides, validation, the resolved config) works on lists of these.
struct SettingRef {
  std::string key;  // "section.name"
  std::variant<int*, std::int64_t*, double*, bool*, std::string*> value;
  std::string help;
  std::optional<Range> range;
  std::optional<OneOf> one_of;

  std::string to_string() const;
  // Parses `text` into the field, with the field's type; throws tom::Error naming the key.
  void parse(const std::string& text) const;
  // Throws tom::Error when the value is out of its range or not an allowed choice.
  void check() const;
};

class SettingCollector {
 public:
  explicit SettingCollector(std::string section) : prefix_(std::move(section) + ".") {}
  template <typename T>
  void operator()(const char* name, T& field, const char* help) {
    refs_.push_back({prefix_ + name, &field, help, std::nullopt, std::nullopt});
  }
  template <typename T>
  void operator()(const char* name, T& field, const char* help, Range range) {
    refs_.push_back({prefix_ + name, &field, help, range, std::nullopt});
  }
  void operator()(const char* name, std::string& field, const char* help, OneOf choices) {
    refs_.push_back({prefix_ + name, &field, help, std::nullopt, std::move(choices)});
  }
  std::vector<SettingRef> take() { return std::move(refs_); }

 private:
  std::string prefix_;
  std::vector<SettingRef> refs_;
};

// The fields of `settings` under the section name, e.g. settings_of("sac", sac).
template <typename Settings>
std::vector<SettingRef> settings_of(const std::string& section, Settings& settings) {
  SettingCollector collector(section);
  settings.visit(collector);
  return collector.take();
}

// Checks every field of a settings struct (ranges and choices).
template <typename Settings>
void check_settings(const std::string& section, Settings& settings) {
  for (const auto& ref : settings_of(section, settings)) ref.check();
}

}  // namespace tom
