#pragma once
// Which binaries ran a run, as its config.toml's provenance section records them
// (config.hpp, Provenance), in a form results can compare. No LibTorch here.
#include <map>
#include <string>
#include <vector>

namespace tom::runs {

// A binary as runs record it: "revision" or "revision+dirty"; "unrecorded" for an empty
// revision (runs made before tom recorded it).
std::string binary_label(const std::string& revision, bool dirty);
// The binaries that ran any part of a run, from its flattened settings: the creator's
// label, then those in provenance.resumed_by.
std::vector<std::string> binaries_of(const std::map<std::string, std::string>& settings);

}  // namespace tom::runs
