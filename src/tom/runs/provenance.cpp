#include "tom/runs/provenance.hpp"

#include <algorithm>

namespace tom::runs {

std::string binary_label(const std::string& revision, bool dirty) {
  if (revision.empty()) return "unrecorded";
  return dirty ? revision + "+dirty" : revision;
}

std::vector<std::string> binaries_of(const std::map<std::string, std::string>& settings) {
  const auto value = [&](const std::string& key) {
    const auto it = settings.find(key);
    return it == settings.end() ? std::string{} : it->second;
  };
  std::vector<std::string> out{binary_label(value("provenance.revision"), value("provenance.dirty") == "true")};
  const std::string resumed = value("provenance.resumed_by");
  for (std::size_t start = 0; start < resumed.size();) {
    const auto comma = std::min(resumed.find(',', start), resumed.size());
    if (comma > start) out.push_back(resumed.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace tom::runs
