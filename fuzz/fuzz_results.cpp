// libFuzzer target: the readers `tom compare` and `tom plot` use on run directories.
// The input is a config.toml text and a metrics.csv text separated by the first NUL byte
// (no NUL: all metrics.csv, with an empty config). Bad input must end in tom::Error; any
// other exception or crash is a bug. An accepted run is also grouped into an arm and its
// columns are read, as `compare` does.
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tom/core/error.hpp"
#include "tom/results/run_records.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const auto split = input.find('\0');
  const std::string config = split == std::string::npos ? "" : input.substr(0, split);
  std::istringstream metrics(split == std::string::npos ? input : input.substr(split + 1));
  try {
    auto settings = tom::runs::flatten_toml(config, "fuzz_run/config.toml");
    std::vector<tom::runs::RunRecord> runs{tom::runs::parse_run("fuzz_run", std::move(settings), metrics)};
    for (const auto step : runs[0].steps()) (void)step;
    for (const auto& name : runs[0].metrics.header) (void)runs[0].metrics.column(name, /*require_finite=*/false);
    const auto arms = tom::runs::group_into_arms(runs);
    if (arms.size() != 1 || arms[0].runs.size() != 1) std::abort();  // one run is one arm
  } catch (const tom::Error&) {
  }
  return 0;
}
