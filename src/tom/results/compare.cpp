#include "tom/results/compare.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "tom/core/error.hpp"
#include "tom/runs/provenance.hpp"

namespace tom::runs {
namespace {

// Values of the metric at each step for one run; NaN/inf are errors naming the row.
std::map<std::int64_t, double> series_of(const RunRecord& run, const std::string& metric) {
  const auto steps = run.steps();
  const auto values = run.metrics.column(metric);
  std::map<std::int64_t, double> out;
  for (std::size_t i = 0; i < steps.size(); ++i) out[steps[i]] = values[i];
  return out;
}

double iqm_of_first(const Strata& s) { return interquartile_mean(s[0]); }
double iqm_difference(const Strata& s) { return interquartile_mean(s[0]) - interquartile_mean(s[1]); }

// A row's bootstrap seed comes from the user's seed and what the row is (the arm's
// settings, the quantity, the step, interval or difference), never from its place in the
// table: the whole table is reproducible, rows do not share resampling noise by accident,
// and an arm's interval at a step is the same whichever other runs or steps a command names.
// Only settings that every run of the arm recorded count: a setting a later binary adds
// does not move the intervals of runs made before it.
std::uint64_t row_seed(std::uint64_t seed, const Arm& arm, const std::string& quantity, std::int64_t step,
                       bool difference) {
  std::string name;
  for (const auto& [key, value] : arm.settings)
    if (std::ranges::all_of(arm.runs, [&](const RunRecord* run) { return run->recorded.contains(key); }))
      name += key + "=" + value + "\n";
  return named_seed(seed, fmt::format("{}{} at {}: {}", name, quantity, step, difference ? "difference" : "interval"));
}

// Two decimals for returns and the like; three significant digits below 1, so that small
// metrics (model errors of 0.002) do not print as 0.00.
std::string num(double v) {
  if (!std::isfinite(v)) return "nan";
  if (v != 0.0 && std::abs(v) < 1.0) return fmt::format("{:.3g}", v);
  return fmt::format("{:.2f}", v);
}

// A run directory relative to the working directory when it lies below it, so that text
// generated from a checkout does not name the machine; else as found.
std::string shown_path(const std::filesystem::path& dir) {
  const auto relative = dir.lexically_proximate(std::filesystem::current_path());
  return relative.empty() || *relative.begin() == ".." ? dir.string() : relative.string();
}

// A p-value to two significant digits, small ones as "< 0.001".
std::string p_value(double p) { return p < 0.001 ? "< 0.001" : fmt::format("{:.2g}", p); }

}  // namespace

std::vector<std::int64_t> default_steps(const std::vector<RunRecord>& runs, int points) {
  if (points < 1) fail("--points must be at least 1 (got {})", points);
  std::set<std::int64_t> all;
  for (const auto& run : runs)
    for (auto s : run.steps()) all.insert(s);
  if (all.empty()) fail("the runs have no evaluations");
  const std::vector<std::int64_t> grid(all.begin(), all.end());
  const double end = static_cast<double>(grid.back());
  std::set<std::int64_t> chosen;
  for (int k = 1; k <= points; ++k) {
    const double target = end * k / points;
    std::int64_t best = grid.front();
    for (auto s : grid)
      if (std::abs(static_cast<double>(s) - target) < std::abs(static_cast<double>(best) - target)) best = s;
    chosen.insert(best);
  }
  return {chosen.begin(), chosen.end()};
}

namespace {

// The steps to report, sorted: the chosen ones, or evenly spread ones; a chosen step within
// the runs' span that no run evaluated is an error (there is nothing to report there).
std::vector<std::int64_t> report_steps(const std::vector<RunRecord>& runs, const CompareOptions& options) {
  // Only "last" asked for: no evenly spread steps beside each arm's last common one.
  if (options.steps.empty() && options.last_common) return {};
  std::vector<std::int64_t> steps = options.steps.empty() ? default_steps(runs, options.points) : options.steps;
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  std::set<std::int64_t> all;
  for (const auto& run : runs)
    for (auto s : run.steps()) all.insert(s);
  // A step past every run is one the runs have not reached yet (each arm notes it); one
  // inside their span that none evaluated is a mistake.
  for (auto s : steps)
    if (!all.contains(s) && s < *all.rbegin())
      fail("no run has an evaluation at step {} (evaluated steps: {})", s,
           steps_text(std::vector<std::int64_t>(all.begin(), all.end())));
  return steps;
}

// One arm's metric per run, its values at each reported step, and the AUC per run.
struct ArmData {
  std::vector<std::int64_t> steps;  // the arm's reported steps
  std::vector<std::map<std::int64_t, double>> series;
  std::map<std::int64_t, std::vector<double>> at_step;
  std::vector<std::int64_t> auc_steps;
  std::vector<double> auc;
};

ArmData collect_arm(const Arm& arm, const std::string& metric, const std::vector<std::int64_t>& steps,
                    std::vector<std::string>& notes) {
  ArmData d;
  for (const auto* run : arm.runs) d.series.push_back(series_of(*run, metric));
  for (auto step : steps) {
    std::vector<std::size_t> missing;
    for (std::size_t r = 0; r < arm.runs.size(); ++r) {
      const auto it = d.series[r].find(step);
      if (it != d.series[r].end()) {
        d.at_step[step].push_back(it->second);
      } else {
        missing.push_back(r);
      }
    }
    for (auto r : missing) {
      std::vector<std::int64_t> have;
      for (const auto& [s, v] : d.series[r]) have.push_back(s);
      notes.push_back(fmt::format("arm '{}': run {} has no evaluation at step {} (it has {}); that step's statistics "
                                  "use the {} run(s) that have it",
                                  arm.label, shown_path(arm.runs[r]->dir), step, steps_text(have),
                                  arm.runs.size() - missing.size()));
    }
  }
  // The AUC covers the steps every run of the arm evaluated, up to the last reported step.
  std::set<std::int64_t> common;
  for (const auto& [s, v] : d.series[0])
    if (s <= steps.back()) common.insert(s);
  bool unequal = false;
  for (std::size_t r = 1; r < d.series.size(); ++r) {
    std::set<std::int64_t> next, own;
    for (auto s : common)
      if (d.series[r].contains(s)) next.insert(s);
    for (const auto& [s, v] : d.series[r])
      if (s <= steps.back()) own.insert(s);
    if (own != common) unequal = true;
    common = next;
  }
  d.auc_steps.assign(common.begin(), common.end());
  if (unequal)
    notes.push_back(fmt::format("arm '{}': its runs evaluated different steps; the AUC uses the {} steps all of them "
                                "have ({})",
                                arm.label, d.auc_steps.size(), steps_text(d.auc_steps)));
  if (d.auc_steps.empty()) {
    notes.push_back(fmt::format("arm '{}': its runs share no evaluated step; no AUC", arm.label));
    return d;
  }
  const std::vector<double> x(d.auc_steps.begin(), d.auc_steps.end());
  for (const auto& series : d.series) {
    std::vector<double> y;
    for (auto s : d.auc_steps) y.push_back(series.at(s));
    d.auc.push_back(normalized_auc(x, y));
  }
  return d;
}

// The values of the runs of an arm that evaluated `step`.
std::vector<double> values_at(const ArmData& d, std::int64_t step) {
  std::vector<double> out;
  for (const auto& series : d.series)
    if (const auto it = series.find(step); it != series.end()) out.push_back(it->second);
  return out;
}

// The steps one arm reports: the common ones up to the furthest its runs reached (a step
// beyond that is past the arm's budget: one note, no row), plus with last_common the last
// step that every run of the arm and of its partners evaluated (its baseline, or for a
// baseline the arms compared with it), so an arm and its baseline meet at one step.
std::vector<std::int64_t> arm_steps(const Arm& arm, const std::vector<const Arm*>& partners,
                                    const std::vector<std::int64_t>& steps,
                                    const CompareOptions& options, std::vector<std::string>& notes) {
  std::int64_t furthest = 0;
  for (const auto* run : arm.runs) furthest = std::max(furthest, run->steps().back());
  std::vector<std::int64_t> out, beyond;
  for (auto s : steps) (s <= furthest ? out : beyond).push_back(s);
  if (!beyond.empty())
    notes.push_back(fmt::format("arm '{}': no run reached step {} (they end by {}); no row there", arm.label,
                                steps_text(beyond), furthest));
  if (options.last_common) {
    std::vector<const RunRecord*> runs = arm.runs;
    for (const Arm* partner : partners) runs.insert(runs.end(), partner->runs.begin(), partner->runs.end());
    std::set<std::int64_t> common;
    for (auto s : runs.front()->steps()) common.insert(s);
    for (const auto* run : runs) {
      const auto own = run->steps();
      std::set<std::int64_t> kept;
      for (auto s : own)
        if (common.contains(s)) kept.insert(s);
      common = kept;
    }
    if (common.empty())
      notes.push_back(fmt::format("arm '{}': its runs and those it is compared with share no evaluated step; no last common step",
                                  arm.label));
    else if (std::find(out.begin(), out.end(), *common.rbegin()) == out.end())
      out.push_back(*common.rbegin());
    std::sort(out.begin(), out.end());
  }
  if (out.empty()) fail("arm '{}' has no step to report (its runs end by {})", arm.label, furthest);
  return out;
}

// One row: the IQM of `values` with its interval and, given the baseline's values, the
// difference of IQMs with its interval.
CompareRow make_row(const Arm& arm, const std::string& quantity, std::int64_t step, const std::vector<double>& values,
                    const Arm* base, const std::vector<double>* base_values, const CompareOptions& options) {
  CompareRow row;
  row.arm = arm.label;
  row.quantity = quantity;
  row.step = step;
  row.n = static_cast<int>(values.size());
  if (!values.empty()) {
    row.mean = mean_of(values);
    row.iqm = interquartile_mean(values);
    row.ci = stratified_bootstrap_ci({values}, iqm_of_first, options.reps, options.confidence,
                                     row_seed(options.seed, arm, quantity, step, false));
  } else {
    row.mean = row.iqm = std::nan("");
    row.ci = {std::nan(""), std::nan("")};
  }
  if (base) row.baseline = base->label;
  row.values = values;
  if (base_values && !values.empty() && !base_values->empty()) {
    row.baseline_values = *base_values;
    row.diff = interquartile_mean(values) - interquartile_mean(*base_values);
    row.diff_ci = stratified_bootstrap_ci({values, *base_values}, iqm_difference, options.reps, options.confidence,
                                          row_seed(options.seed, arm, quantity, step, true));
    if (values.size() >= 2 && base_values->size() >= 2) row.welch = welch_test(values, *base_values);
  }
  return row;
}

}  // namespace

namespace {

// Results compared across binaries may differ for that reason alone: say so when the runs
// (or a run's resumed parts) came from more than one, or from ones that cannot be told apart.
std::string binaries_note(const std::vector<Arm>& arms) {
  std::set<std::string> all;
  std::vector<std::string> per_arm;
  for (const Arm& arm : arms) {
    std::map<std::string, int> count;
    for (const auto* run : arm.runs)
      for (const auto& binary : [&] {
             const auto binaries = binaries_of(run->settings);
             return std::set<std::string>(binaries.begin(), binaries.end());
           }())
        ++count[binary];
    std::vector<std::string> parts;
    for (const auto& [binary, runs] : count) {
      parts.push_back(fmt::format("{} ({} run{})", binary, runs, runs == 1 ? "" : "s"));
      all.insert(binary);
    }
    per_arm.push_back(fmt::format("arm '{}': {}", arm.label, join(parts)));
  }
  if (all.size() > 1) return "the runs come from different binaries, so a difference may be the code's: " + join(per_arm, "; ");
  if (all.contains("unrecorded"))
    return "no run records its binary (made before tom recorded it): that they ran the same code is unchecked";
  if (all.size() == 1 && all.begin()->ends_with("+dirty"))
    return fmt::format("every run comes from {}, a build with uncommitted changes: the same label may hide different "
                       "code",
                       *all.begin());
  return "";
}

}  // namespace

namespace {

// What each arm pools: for every pooled setting whose values differ among its runs, the
// values and how many runs hold each.
void note_pooled(const std::vector<Arm>& arms, const std::vector<std::string>& pooled,
                 std::vector<std::string>& notes) {
  if (pooled.empty()) return;
  for (const Arm& arm : arms) {
    std::map<std::string, std::map<std::string, int>> values;
    for (const auto* run : arm.runs)
      for (const auto& [k, v] : run->settings)
        if (is_pooled(k, pooled)) ++values[k][v];
    std::vector<std::string> mixed;
    for (const auto& [key, counts] : values) {
      if (counts.size() < 2 && counts.begin()->second == static_cast<int>(arm.runs.size())) continue;
      std::vector<std::string> parts;
      for (const auto& [value, n] : counts) parts.push_back(fmt::format("{}: {}", value, n));
      mixed.push_back(fmt::format("{} ({})", key, join(parts)));
    }
    if (!mixed.empty())
      notes.push_back(fmt::format("arm '{}' pools runs that differ in {}", arm.label, join(mixed, "; ")));
  }
}

}  // namespace

CompareResult compare_runs(const std::vector<RunRecord>& runs, const CompareOptions& options) {
  if (runs.empty()) fail("no runs to compare");
  CompareResult result;
  result.metric = options.metric;
  result.confidence = options.confidence;
  for (const auto& run : runs)
    if (!run.metrics.has(options.metric))
      fail("{} has no column '{}' (its columns: {})", run.metrics.file.string(), options.metric,
           join(run.metrics.header));
  const auto arms = group_into_arms(runs, options.pooled);
  result.steps = report_steps(runs, options);
  std::map<std::string, std::string> selector;
  if (!options.baseline.empty()) selector = parse_selector(options.baseline, arms);

  note_pooled(arms, options.pooled, result.notes);
  result.binaries_note = binaries_note(arms);
  if (!result.binaries_note.empty()) result.notes.push_back(result.binaries_note);

  std::vector<const Arm*> bases;
  for (const Arm& arm : arms) bases.push_back(selector.empty() ? nullptr : counterpart(arm, selector, arms));
  std::vector<ArmData> data;
  for (std::size_t a = 0; a < arms.size(); ++a) {
    result.arms.push_back(arms[a].label);
    std::vector<std::string> dirs;
    for (const auto* run : arms[a].runs) dirs.push_back(shown_path(run->dir));
    result.arm_runs.push_back(dirs);
    result.arm_settings.push_back(arms[a].settings);
    // An arm meets its baseline, and a baseline every arm compared with it, at one last step.
    std::vector<const Arm*> partners;
    for (std::size_t x = 0; x < arms.size(); ++x)
      if (x != a && (bases[a] == &arms[x] || bases[x] == &arms[a])) partners.push_back(&arms[x]);
    const auto steps = arm_steps(arms[a], partners, result.steps, options, result.notes);
    data.push_back(collect_arm(arms[a], options.metric, steps, result.notes));
    data.back().steps = steps;
  }

  for (std::size_t a = 0; a < arms.size(); ++a) {
    const Arm* base = bases[a];
    const std::size_t b = base ? static_cast<std::size_t>(base - arms.data()) : 0;
    const bool other_base = base && b != a;  // an arm is not compared with itself
    if (!selector.empty() && !base)
      result.notes.push_back(fmt::format("arm '{}': no baseline arm with {} and its other settings", arms[a].label,
                                         options.baseline));
    for (auto step : data[a].steps) {
      const auto it = data[a].at_step.find(step);
      const std::vector<double> values = it == data[a].at_step.end() ? std::vector<double>{} : it->second;
      std::vector<double> base_values;
      if (other_base) {
        base_values = values_at(data[b], step);
        if (base_values.empty())
          result.notes.push_back(fmt::format("step {}: baseline arm '{}' has no evaluation there; no difference for '{}'",
                                             step, base->label, arms[a].label));
      }
      result.rows.push_back(
          make_row(arms[a], options.metric, step, values, base, base_values.empty() ? nullptr : &base_values, options));
    }
    if (data[a].auc.empty()) continue;
    const std::vector<double>* base_auc = nullptr;
    if (other_base) {
      if (data[b].auc_steps == data[a].auc_steps)
        base_auc = &data[b].auc;
      else
        result.notes.push_back(fmt::format("arm '{}' and its baseline '{}' cover different steps for the AUC ({} vs "
                                           "{}); no AUC difference given",
                                           arms[a].label, base->label, steps_text(data[a].auc_steps),
                                           steps_text(data[b].auc_steps)));
    }
    result.rows.push_back(
        make_row(arms[a], "auc", data[a].auc_steps.back(), data[a].auc, base, base_auc, options));
  }
  return result;
}

std::string to_markdown(const CompareResult& result) {
  const int pct = static_cast<int>(std::lround(result.confidence * 100));
  std::string out = fmt::format("## {} across seeds\n\n", result.metric);
  out += fmt::format("IQM: interquartile mean over seeds; CI: {}% stratified-bootstrap percentile interval of the IQM; "
                     "AUC: area under the curve through the evaluations, divided by its step span (the average {}).\n\n",
                     pct, result.metric);
  out += "Arms:\n\n";
  for (std::size_t a = 0; a < result.arms.size(); ++a)
    out += fmt::format("- **{}**: {} run(s): {}\n", result.arms[a], result.arm_runs[a].size(),
                       join(result.arm_runs[a]));
  const bool any_diff = std::any_of(result.rows.begin(), result.rows.end(), [](const CompareRow& r) { return r.diff.has_value(); });
  out += fmt::format("\n| arm | step | n | mean | IQM | {}% CI |", pct);
  if (any_diff) out += fmt::format(" IQM − baseline | {}% CI | Welch p |", pct);
  out += any_diff ? "\n|---|---:|---:|---:|---:|---|---:|---|---:|\n" : "\n|---|---:|---:|---:|---:|---|\n";
  for (const auto& row : result.rows) {
    const std::string step = row.quantity == "auc" ? fmt::format("AUC to {}", row.step) : std::to_string(row.step);
    out += fmt::format("| {} | {} | {} | {} | {} | [{}, {}] |", row.arm, step, row.n, num(row.mean), num(row.iqm),
                       num(row.ci.low), num(row.ci.high));
    if (any_diff) {
      if (row.diff)
        out += fmt::format(" {} | [{}, {}] | {} |", num(*row.diff), num(row.diff_ci.low), num(row.diff_ci.high),
                           row.welch ? p_value(row.welch->p) : "–");
      else
        out += row.baseline == row.arm ? " (baseline) | | |" : " – | | |";
    }
    out += "\n";
  }
  if (!result.notes.empty()) {
    out += "\nNotes (missing or unequal steps; nothing is interpolated):\n\n";
    for (const auto& note : result.notes) out += "- " + note + "\n";
  }
  return out;
}

std::string to_csv(const CompareResult& result) {
  const auto g = [](double v) { return std::isfinite(v) ? fmt::format("{}", v) : std::string(); };
  std::string out =
      "arm,quantity,step,n,mean,iqm,ci_low,ci_high,baseline,diff_iqm,diff_ci_low,diff_ci_high,welch_t,welch_df,"
      "welch_p\n";
  for (const auto& row : result.rows) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csv_quoted(row.arm), row.quantity, row.step,
                       row.n, g(row.mean), g(row.iqm), g(row.ci.low), g(row.ci.high), csv_quoted(row.baseline),
                       row.diff ? g(*row.diff) : "", row.diff ? g(row.diff_ci.low) : "",
                       row.diff ? g(row.diff_ci.high) : "", row.welch ? g(row.welch->t) : "",
                       row.welch ? g(row.welch->df) : "", row.welch ? g(row.welch->p) : "");
  }
  return out;
}

}  // namespace tom::runs
