#pragma once
// Lookup in a constant table of named entries (the objective and backbone registries):
// every entry has a `name`; an unknown name is an error listing the valid ones.
#include <span>
#include <string>
#include <vector>

#include "tom/core/error.hpp"

namespace tom {

template <class Entry>
std::vector<std::string> entry_names(std::span<const Entry> table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.emplace_back(entry.name);
  return names;
}

// `what` names the kind of entry in the error: "unknown backbone 'x' (valid: sac, mbpo)".
template <class Entry>
const Entry& entry_named(std::span<const Entry> table, const std::string& name, const char* what) {
  for (const auto& entry : table)
    if (entry.name == name) return entry;
  fail_unknown("unknown {} '{}' (valid: {})", what, name, join(entry_names(table)));
}

}  // namespace tom
