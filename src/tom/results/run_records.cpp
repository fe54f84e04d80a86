#include "tom/results/run_records.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "tom/core/error.hpp"

namespace fs = std::filesystem;

namespace tom::runs {
namespace {

// `s` without surrounding spaces (selectors are typed by hand).
std::string without_spaces(const std::string& s) {
  const auto first = s.find_first_not_of(' '), last = s.find_last_not_of(' ');
  return first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
}

}  // namespace

std::vector<std::int64_t> RunRecord::steps() const {
  std::vector<std::int64_t> out;
  for (double s : metrics.column("step")) out.push_back(static_cast<std::int64_t>(s));
  return out;
}

RunRecord read_run(const fs::path& dir, const SettingsReader& read_settings) {
  if (!fs::is_directory(dir)) fail("{} is not a directory", dir.string());
  const fs::path config = dir / "config.toml";
  if (!fs::exists(config)) fail("{} is not a run directory: it has no config.toml", dir.string());
  std::ifstream config_in(config);
  std::stringstream text;
  text << config_in.rdbuf();
  auto settings = read_settings(text.str(), config.string());
  const fs::path metrics_file = dir / "metrics.csv";
  if (!fs::exists(metrics_file))
    fail("{} has no metrics.csv (the run has not written an evaluation yet)", dir.string());
  std::ifstream metrics(metrics_file);
  if (!metrics) fail("cannot read {}: not readable", metrics_file.string());
  RunRecord run = parse_run(dir, std::move(settings), metrics);
  run.recorded.clear();
  for (const auto& [key, value] : flatten_toml(text.str(), config.string())) run.recorded.insert(key);
  return run;
}

RunRecord parse_run(const fs::path& dir, std::map<std::string, std::string> settings, std::istream& metrics) {
  RunRecord run;
  run.dir = dir;
  const fs::path config = dir / "config.toml";
  run.settings = std::move(settings);
  for (const auto& [key, value] : run.settings) run.recorded.insert(key);
  run.metrics = parse_numeric_csv(metrics, dir / "metrics.csv");
  if (run.metrics.rows.empty()) fail("{} has no rows (the run has not finished an evaluation yet)",
                                     run.metrics.file.string());
  const auto steps = run.metrics.column("step");
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (!(steps[i] >= 0 && steps[i] <= 1e15 && steps[i] == std::floor(steps[i])))
      fail("{}, line {}: step {} is not a whole number of env steps", run.metrics.file.string(), i + 2, steps[i]);
  for (std::size_t i = 1; i < steps.size(); ++i)
    if (!(steps[i] > steps[i - 1]))
      fail("{}, line {}: step {} does not follow {}", run.metrics.file.string(), i + 2, steps[i], steps[i - 1]);
  if (auto it = run.settings.find("run.seed"); it != run.settings.end()) {
    const auto& text = it->second;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), run.seed);
    if (error != std::errc() || end != text.data() + text.size())
      fail("{}: run.seed is '{}', not an integer", config.string(), text);
  }
  return run;
}

std::vector<RunRecord> find_runs(const std::vector<fs::path>& paths, const SettingsReader& read_settings) {
  if (paths.empty()) fail("no run or sweep directories given");
  std::set<fs::path> dirs;
  for (const auto& path : paths) {
    if (!fs::exists(path)) fail("{} does not exist", path.string());
    if (!fs::is_directory(path)) fail("{} is not a directory (give run or sweep directories)", path.string());
    if (fs::exists(path / "config.toml")) {
      dirs.insert(fs::weakly_canonical(path));
      continue;
    }
    std::size_t found = 0;
    for (const auto& entry : fs::recursive_directory_iterator(path))
      if (entry.is_regular_file() && entry.path().filename() == "config.toml") {
        dirs.insert(fs::weakly_canonical(entry.path().parent_path()));
        ++found;
      }
    if (found == 0) fail("{} holds no run directory (no config.toml in it or below it)", path.string());
  }
  std::vector<RunRecord> runs;
  for (const auto& dir : dirs) runs.push_back(read_run(dir, read_settings));
  return runs;
}

bool ignored_for_arm(const std::string& key) {
  // A budget or a target return only decides where a run ends, not its curve up to there.
  static const std::set<std::string> ignored = {"run.seed",  "run.threads",        "run.device",
                                                "run.checkpoint_every", "run.steps", "run.stop_at_return",
                                                "run.target_return"};
  return ignored.contains(key) || key.starts_with("provenance.");
}

bool is_pooled(const std::string& key, const std::vector<std::string>& pooled) {
  return std::any_of(pooled.begin(), pooled.end(), [&](const std::string& p) {
    return p == key || (p.ends_with(".*") && key.starts_with(p.substr(0, p.size() - 1)));
  });
}

std::vector<Arm> group_into_arms(const std::vector<RunRecord>& runs, const std::vector<std::string>& pooled) {
  std::map<std::map<std::string, std::string>, std::vector<const RunRecord*>> groups;
  for (const auto& run : runs) {
    std::map<std::string, std::string> key;
    for (const auto& [k, v] : run.settings)
      if (!ignored_for_arm(k) && !is_pooled(k, pooled)) key[k] = v;
    groups[key].push_back(&run);
  }
  // The keys whose values differ between arms.
  std::set<std::string> all_keys;
  for (const auto& [settings, _] : groups)
    for (const auto& [k, v] : settings) all_keys.insert(k);
  std::vector<std::string> differing;
  for (const auto& k : all_keys) {
    std::set<std::string> values;
    for (const auto& [settings, _] : groups) {
      const auto it = settings.find(k);
      values.insert(it == settings.end() ? "(unset)" : it->second);
    }
    if (values.size() > 1) differing.push_back(k);
  }
  // Keep only the keys needed to tell arms apart (a task's defaults change with the task,
  // so "env" alone names them): run.* and objective.* first, then the rest in order, each
  // kept only if it separates arms that the keys kept so far do not.
  std::stable_sort(differing.begin(), differing.end(), [](const std::string& a, const std::string& b) {
    const auto rank = [](const std::string& k) { return k.starts_with("run.") ? 0 : k.starts_with("objective.") ? 1 : 2; };
    return rank(a) < rank(b);
  });
  {
    std::vector<std::string> kept;
    std::size_t distinct = 1;
    for (const auto& k : differing) {
      kept.push_back(k);
      std::set<std::vector<std::string>> tuples;
      for (const auto& [settings, _] : groups) {
        std::vector<std::string> t;
        for (const auto& key : kept) {
          const auto it = settings.find(key);
          t.push_back(it == settings.end() ? "(unset)" : it->second);
        }
        tuples.insert(t);
      }
      if (tuples.size() > distinct) distinct = tuples.size();
      else kept.pop_back();
    }
    differing = kept;
  }
  const auto short_name = [](const std::string& key) { return key.starts_with("run.") ? key.substr(4) : key; };
  std::vector<Arm> arms;
  for (auto& group : groups) {
    // (named, not structured bindings: clang 14, which builds the fuzz targets, cannot
    // capture those in the lambda below)
    const auto& settings = group.first;
    Arm arm;
    arm.settings = settings;
    arm.runs = group.second;
    std::sort(arm.runs.begin(), arm.runs.end(),
              [](const RunRecord* a, const RunRecord* b) { return std::tie(a->seed, a->dir) < std::tie(b->seed, b->dir); });
    if (differing.empty()) {
      const auto get = [&](const std::string& k) {
        const auto it = settings.find(k);
        return it == settings.end() ? std::string("?") : it->second;
      };
      arm.label = get("run.algo") + " on " + get("run.env");
      if (auto it = settings.find("objective.name"); it != settings.end() && get("run.algo") == "mbpo")
        arm.label += " (" + it->second + ")";
    } else {
      std::vector<std::string> parts;
      for (const auto& k : differing) {
        const auto it = settings.find(k);
        parts.push_back(short_name(k) + "=" + (it == settings.end() ? "(unset)" : it->second));
      }
      arm.label = join(parts, ", ");
    }
    arms.push_back(std::move(arm));
  }
  std::sort(arms.begin(), arms.end(), [](const Arm& a, const Arm& b) { return a.label < b.label; });
  return arms;
}

std::map<std::string, std::string> parse_selector(const std::string& text, const std::vector<Arm>& arms) {
  std::set<std::string> keys;
  for (const auto& arm : arms)
    for (const auto& [k, v] : arm.settings) keys.insert(k);
  std::map<std::string, std::string> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    part = without_spaces(part);
    const auto eq = part.find('=');
    if (eq == std::string::npos || eq == 0) fail("'{}' is not key=value (e.g. objective.name=mle)", part);
    const std::string key = without_spaces(part.substr(0, eq)), value = without_spaces(part.substr(eq + 1));
    std::vector<std::string> matches;
    for (const auto& k : keys)
      if (k == key) matches = {k};
    if (matches.empty())
      for (const auto& k : keys)
        if (k.size() > key.size() && k.ends_with(key) && k[k.size() - key.size() - 1] == '.') matches.push_back(k);
    if (matches.empty()) fail("no setting is called '{}' (use section.name, e.g. objective.name)", key);
    if (matches.size() > 1) fail("'{}' is ambiguous: it could be {}", key, join(matches));
    out[matches[0]] = value;
  }
  if (out.empty()) fail("empty selector: give key=value (e.g. objective.name=mle)");
  return out;
}

const Arm* counterpart(const Arm& arm, const std::map<std::string, std::string>& selector,
                       const std::vector<Arm>& arms) {
  auto wanted = arm.settings;
  for (const auto& [k, v] : selector) wanted[k] = v;
  for (const auto& other : arms)
    if (other.settings == wanted) return &other;
  return nullptr;
}

std::string csv_quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string steps_text(const std::vector<std::int64_t>& steps) {
  std::vector<std::string> parts;
  for (auto s : steps) parts.push_back(std::to_string(s));
  if (parts.size() > 12) {
    parts.erase(parts.begin() + 5, parts.end() - 5);
    parts.insert(parts.begin() + 5, "...");
  }
  return join(parts);
}

}  // namespace tom::runs
