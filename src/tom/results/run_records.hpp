#pragma once
// Reading finished (or running) run directories for comparison and plotting: the
// numeric CSV files a run writes (metrics.csv, weights.csv), its resolved settings
// (config.toml, flattened to "section.name" -> value), and the grouping of runs into
// arms: runs whose settings are equal except for the seed (and settings that cannot
// change results: threads, device, checkpoint interval, budget).
// No LibTorch here.
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tom/runs/metrics_table.hpp"
#include "tom/runs/settings_io.hpp"

namespace tom::runs {

struct RunRecord {
  std::filesystem::path dir;
  std::map<std::string, std::string> settings;  // "section.name" -> value as text
  // The keys its config.toml wrote: settings a later version added (and filled in with
  // their defaults) are in `settings`, not here.
  std::set<std::string> recorded;
  NumericTable metrics;
  std::int64_t seed = 0;

  std::vector<std::int64_t> steps() const;  // the metrics' step column
};
// A run's settings from the text of its config.toml (flatten_toml, or resumed_settings in
// config.hpp, which also fills in the settings an older version did not write).
using SettingsReader = std::function<std::map<std::string, std::string>(const std::string& toml_text,
                                                                        const std::string& source)>;
// Reads one run directory (config.toml and metrics.csv must exist).
RunRecord read_run(const std::filesystem::path& dir, const SettingsReader& read_settings);
// A run record from its flattened config.toml (flatten_toml: every key recorded) and its
// metrics.csv stream:
// throws tom::Error naming the file for a seed that is not an integer, no evaluation
// rows, or steps that are not increasing whole numbers.
RunRecord parse_run(const std::filesystem::path& dir, std::map<std::string, std::string> settings,
                    std::istream& metrics);

// Each path is a run directory (it has config.toml) or a directory holding run
// directories at any depth (a sweep). Throws naming a path that does not exist or holds
// no run. Runs are sorted by path; a run found twice is read once.
std::vector<RunRecord> find_runs(const std::vector<std::filesystem::path>& paths,
                                 const SettingsReader& read_settings = flatten_toml);

// Settings that do not define an arm: the seed, what cannot change the results, and the
// provenance section (which binary ran it: compare notes when arms differ there).
bool ignored_for_arm(const std::string& key);


// Steps listed for a message ("100, 200, 300"), the middle elided when there are many.
std::string steps_text(const std::vector<std::int64_t>& steps);
// `text` as one CSV field: in double quotes, inner quotes doubled.
std::string csv_quoted(const std::string& text);

struct Arm {
  std::string label;                            // the settings that tell arms apart
  std::map<std::string, std::string> settings;  // the arm's settings (ignored keys removed)
  std::vector<const RunRecord*> runs;           // sorted by seed
};
// Groups runs into arms, ordered by label. Labels list the settings that differ between
// arms, as few as tell them apart ("env=hopper, objective.name=tom"; the section "run."
// is dropped), or "<algo> on <env>" when there is a single arm.
// Keys in `pooled` ("section.name", or "section.*" for a whole section) are left out of
// the grouping too, so runs that differ only there share an arm.
std::vector<Arm> group_into_arms(const std::vector<RunRecord>& runs, const std::vector<std::string>& pooled = {});
// Whether `key` is one of `pooled` (as above).
bool is_pooled(const std::string& key, const std::vector<std::string>& pooled);

// "key=value[,key=value...]" where each key is a full "section.name" or a name that
// ends exactly one setting's key; returns full keys. Throws for an unknown or ambiguous key.
std::map<std::string, std::string> parse_selector(const std::string& text, const std::vector<Arm>& arms);
// The arm whose settings equal `arm`'s with `selector` applied, or nullptr.
const Arm* counterpart(const Arm& arm, const std::map<std::string, std::string>& selector,
                       const std::vector<Arm>& arms);

}  // namespace tom::runs
