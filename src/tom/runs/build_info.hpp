#pragma once
// What built this binary, recorded in every run's config.toml (section provenance) so
// that results can say which code produced them. Generated at every build by
// cmake/build_info.cmake.
#include <string>

namespace tom::runs {

struct BuildInfo {
  std::string revision;    // git commit (12 hex digits), or "unknown" outside a git checkout
  bool dirty = false;      // the checkout had changes not in that commit
  std::string build_type;  // CMake's build type: Release, Debug, ...
};

const BuildInfo& build_info();

}  // namespace tom::runs
