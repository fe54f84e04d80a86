#include "tom/results/report.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "tom/core/error.hpp"
#include "tom/results/reference_curves.hpp"

namespace tom::runs {
namespace {

// What sets an arm apart from its baseline, and what they share: "tom - mle
// (objective.name)" on the task "hopper", with `family` the other settings the arm's label
// names ("mbpo.time_limit_ends=terminal": what tells this pair from other pairs on the
// same task, e.g. runs of another version of a setting family).
struct Contrast {
  std::string task, family, arm, baseline, keys;
  std::string context() const { return family.empty() ? task : task + " (" + family + ")"; }
};

Contrast contrast_of(const CompareResult& result, const std::string& arm, const std::string& baseline) {
  const auto index = [&](const std::string& label) {
    return static_cast<std::size_t>(std::find(result.arms.begin(), result.arms.end(), label) - result.arms.begin());
  };
  const auto& mine = result.arm_settings.at(index(arm));
  const auto& theirs = result.arm_settings.at(index(baseline));
  Contrast c;
  std::vector<std::string> arm_values, base_values, keys;
  for (const auto& [key, value] : mine) {
    const auto it = theirs.find(key);
    if (it != theirs.end() && it->second == value) continue;
    arm_values.push_back(value);
    base_values.push_back(it == theirs.end() ? "(unset)" : it->second);
    keys.push_back(key);
  }
  const auto env = mine.find("run.env");
  c.task = env == mine.end() ? arm : env->second;
  std::vector<std::string> family;
  std::stringstream parts(arm);
  for (std::string part; std::getline(parts, part, ',');) {
    const auto start = part.find_first_not_of(' ');
    part = start == std::string::npos ? "" : part.substr(start);
    const std::string key = part.substr(0, part.find('='));
    const bool named = key == "env" || key == "run.env" ||
                       std::find(keys.begin(), keys.end(), key) != keys.end() ||
                       std::any_of(keys.begin(), keys.end(), [&](const std::string& k) { return k.ends_with("." + key); });
    if (!part.empty() && part.find('=') != std::string::npos && !named) family.push_back(part);
  }
  c.family = join(family, ", ");
  c.arm = join(arm_values, "/");
  c.baseline = join(base_values, "/");
  c.keys = join(keys, ", ");
  return c;
}

// The last row of each arm that has a baseline difference at a step (not the AUC).
std::vector<const CompareRow*> last_difference_rows(const CompareResult& result) {
  std::map<std::string, const CompareRow*> last;
  for (const auto& row : result.rows)
    if (row.diff && row.quantity != "auc" && (!last.contains(row.arm) || row.step > last[row.arm]->step))
      last[row.arm] = &row;
  std::vector<const CompareRow*> out;
  for (const auto& label : result.arms)
    if (last.contains(label)) out.push_back(last[label]);
  return out;
}

// A difference and its interval, signed: whole numbers when the largest is 10 or more
// (returns), else three significant digits (small quantities such as model errors).
std::string signed_interval(double value, double low, double high) {
  const bool whole = std::max({std::abs(value), std::abs(low), std::abs(high)}) >= 10;
  const auto f = [whole](double v) { return whole ? fmt::format("{:+.0f}", v) : fmt::format("{:+.3g}", v); };
  return fmt::format("{} [{}, {}]", f(value), f(low), f(high));
}

std::string seed_count(std::size_t n) { return fmt::format("{} seed{}", n, n == 1 ? "" : "s"); }

// The published curve's value at `step`, linear between its points (clamped at the ends).
double curve_at(const std::vector<std::pair<double, double>>& curve, double step) {
  if (step <= curve.front().first) return curve.front().second;
  for (std::size_t i = 1; i < curve.size(); ++i)
    if (step <= curve[i].first) {
      const auto [x0, y0] = curve[i - 1];
      const auto [x1, y1] = curve[i];
      return y0 + (y1 - y0) * (step - x0) / (x1 - x0);
    }
  return curve.back().second;
}

// The arm of `arms` labelled `label`; compare_runs grouped the same runs, so it is there.
const Arm& arm_labelled(const std::vector<Arm>& arms, const std::string& label) {
  const auto it = std::find_if(arms.begin(), arms.end(), [&](const Arm& x) { return x.label == label; });
  if (it == arms.end()) fail("arm '{}' is not among the runs given", label);
  return *it;
}

}  // namespace

std::string summary_markdown(const CompareResult& result) {
  const int pct = static_cast<int>(std::lround(result.confidence * 100));
  std::string out;
  for (const CompareRow* row : last_difference_rows(result)) {
    const Contrast c = contrast_of(result, row->arm, row->baseline);
    // A direction is shown only when the bootstrap interval excludes 0 and Welch's test
    // rejects at the same level: with few seeds the percentile bootstrap is too narrow, so
    // the interval alone would claim too much.
    const bool interval_excludes = row->diff_ci.low > 0 || row->diff_ci.high < 0;
    const bool test_rejects = row->welch && row->welch->p < 1 - result.confidence;
    const std::size_t n = row->values.size(), m = row->baseline_values.size();
    const std::string seeds =
        n == m ? fmt::format("{} per arm", seed_count(n)) : fmt::format("{} and {}", seed_count(n), seed_count(m));
    std::string verdict;
    if (!row->welch)
      verdict = fmt::format("no test with {} (Welch's test needs two per arm)", seeds);
    else if (interval_excludes && test_rejects)
      verdict = fmt::format("{} {}", c.arm, *row->diff > 0 ? "higher" : "lower");
    else if (interval_excludes)
      verdict = fmt::format("not shown at {}: the interval excludes 0 but Welch's test does not reject at {:.2g} (with "
                            "few seeds the percentile bootstrap is too narrow)",
                            seeds, 1 - result.confidence);
    else
      verdict = fmt::format("no difference detectable at {}", seeds);
    std::string line = fmt::format("- **{}**, {} at {} steps ({}): {} − {} = {} (IQM, {} % bootstrap interval)",
                                   c.context(), result.metric, row->step, seeds, c.arm, c.baseline,
                                   signed_interval(*row->diff, row->diff_ci.low, row->diff_ci.high), pct);
    if (row->welch) line += fmt::format(", Welch p = {:.2g}", row->welch->p);
    line += fmt::format(": {}", verdict);
    if (n >= 2 && m >= 2 && !(interval_excludes && test_rejects)) {
      const double need = seeds_for_power(mean_of(row->values) - mean_of(row->baseline_values), sample_sd(row->values),
                                          sample_sd(row->baseline_values));
      if (std::isfinite(need))
        line += fmt::format("; a true difference this large would need about {:.0f} seeds per arm for 80 % power",
                            need);
    }
    out += line + ".\n";
  }
  if (!result.binaries_note.empty()) out += "\nNote: " + result.binaries_note + ".\n";
  return out;
}

std::string aggregate_markdown(const CompareResult& result, const AggregateOptions& options,
                               std::vector<std::string>& notes) {
  // Per contrast (arm against baseline, whatever the task), per task: normalised scores.
  struct Task {
    std::string env;
    std::int64_t step;
    std::vector<double> arm, baseline;
  };
  std::map<std::string, std::vector<Task>> contrasts;
  for (const CompareRow* row : last_difference_rows(result)) {
    const Contrast c = contrast_of(result, row->arm, row->baseline);
    const auto curve = published_curve(options.reference, c.task);
    if (curve.empty()) {
      notes.push_back(fmt::format("{}: no published {} curve to normalise by; left out of the aggregate", c.context(),
                                  options.reference));
      continue;
    }
    const double low = curve.front().second, high = curve_at(curve, static_cast<double>(row->step));
    if (!(high > low)) {
      notes.push_back(fmt::format("{}: the published {} curve does not rise by step {}; left out of the aggregate",
                                  c.context(), options.reference, row->step));
      continue;
    }
    Task task{c.task, row->step, {}, {}};
    for (double v : row->values) task.arm.push_back((v - low) / (high - low));
    for (double v : row->baseline_values) task.baseline.push_back((v - low) / (high - low));
    // Pairs of different families are aggregated apart: they are different code.
    contrasts[fmt::format("{} − {} ({}){}", c.arm, c.baseline, c.keys, c.family.empty() ? "" : ", " + c.family)]
        .push_back(std::move(task));
  }
  if (contrasts.empty()) fail("nothing to aggregate: no arm has a baseline difference on a task with a published curve");
  const int pct = static_cast<int>(std::lround(options.confidence * 100));
  std::string out = fmt::format(
      "Scores normalised per task by the published {} curve, (R − P(0)) / (P(step) − P(0)): 0 is its first point, 1 "
      "its mean at the step. IQM over all runs of a side (tasks pooled); P(arm > baseline): the probability that a "
      "run of the arm beats a run of the baseline on the same task, averaged over tasks. {} % stratified-bootstrap "
      "intervals (tasks and sides are the strata).\n\n",
      options.reference, pct);
  out += fmt::format("| contrast | tasks (step) | runs | IQM arm | {0} % CI | IQM baseline | {0} % CI | P(arm > baseline) | {0} % CI |\n",
                     pct);
  out += "|---|---|---:|---:|---|---:|---|---:|---|\n";
  for (const auto& [name, tasks] : contrasts) {
    Strata arm_strata, base_strata, both;
    std::vector<std::string> where;
    std::size_t runs = 0;
    for (const auto& t : tasks) {
      arm_strata.push_back(t.arm);
      base_strata.push_back(t.baseline);
      both.push_back(t.arm);
      both.push_back(t.baseline);
      where.push_back(fmt::format("{} ({})", t.env, t.step));
      runs += t.arm.size() + t.baseline.size();
    }
    const auto pooled_iqm = [](const Strata& strata) {
      std::vector<double> all;
      for (const auto& s : strata) all.insert(all.end(), s.begin(), s.end());
      return interquartile_mean(all);
    };
    const auto mean_improvement = [](const Strata& s) {
      double sum = 0;
      for (std::size_t i = 0; i + 1 < s.size(); i += 2) sum += probability_of_improvement(s[i], s[i + 1]);
      return sum / static_cast<double>(s.size() / 2);
    };
    // Seeded by the contrast and its tasks, so its intervals stay put when other contrasts join.
    SplitMix64 seeds(named_seed(options.seed, name + ": " + join(where)));
    const auto arm_ci = stratified_bootstrap_ci(arm_strata, pooled_iqm, options.reps, options.confidence, seeds.next());
    const auto base_ci =
        stratified_bootstrap_ci(base_strata, pooled_iqm, options.reps, options.confidence, seeds.next());
    const auto poi_ci = stratified_bootstrap_ci(both, mean_improvement, options.reps, options.confidence, seeds.next());
    out += fmt::format("| {} | {} | {} | {:.2f} | [{:.2f}, {:.2f}] | {:.2f} | [{:.2f}, {:.2f}] | {:.2f} | [{:.2f}, {:.2f}] |\n",
                       name, join(where), runs, pooled_iqm(arm_strata), arm_ci.low, arm_ci.high,
                       pooled_iqm(base_strata), base_ci.low, base_ci.high, mean_improvement(both), poi_ci.low,
                       poi_ci.high);
  }
  return out;
}

std::string published_markdown(const CompareResult& result, const std::vector<RunRecord>& runs,
                               const std::vector<std::string>& pooled, const PublishedOptions& options,
                               std::vector<std::string>& notes) {
  if (options.last < 1) fail("the number of evaluations averaged at a run's end must be at least 1");
  const int pct = static_cast<int>(std::lround(result.confidence * 100));
  const auto arms = group_into_arms(runs, pooled);
  std::string out;
  for (std::size_t a = 0; a < result.arms.size(); ++a) {
    const auto env_setting = result.arm_settings[a].find("run.env");
    const std::string env = env_setting == result.arm_settings[a].end() ? "" : env_setting->second;
    const auto curve = published_curve(options.reference, env);
    if (curve.empty()) {
      notes.push_back(fmt::format("{}: no published {} curve; arm '{}' left out", env.empty() ? "(no task)" : env,
                                  options.reference, result.arms[a]));
      continue;
    }
    std::vector<std::string> at_steps;
    std::int64_t first_step = -1;
    for (const auto& row : result.rows) {
      if (row.arm != result.arms[a] || row.quantity != result.metric) continue;
      if (first_step < 0) first_step = row.step;
      at_steps.push_back(fmt::format("at {} ({}): {:.0f} [{:.0f}, {:.0f}] against {:.0f}", row.step, seed_count(row.n),
                                     row.iqm, row.ci.low, row.ci.high, curve_at(curve, static_cast<double>(row.step))));
    }
    if (at_steps.empty()) continue;
    out += fmt::format("- **{}**, {} (IQM and {} % bootstrap interval) against the published {} mean: {}.\n",
                       result.arms[a], result.metric, pct, options.reference, join(at_steps, "; "));
    for (const RunRecord* run : arm_labelled(arms, result.arms[a]).runs) {
      const auto steps = run->steps();
      const auto values = run->metrics.column(result.metric);
      const std::size_t from = steps.size() > static_cast<std::size_t>(options.last) ? steps.size() - options.last : 0;
      double mine = 0.0, published = 0.0;
      for (std::size_t i = from; i < steps.size(); ++i) {
        mine += values[i];
        published += curve_at(curve, static_cast<double>(steps[i]));
      }
      const double count = static_cast<double>(steps.size() - from);
      int above = 0, counted = 0;
      for (std::size_t i = 0; i < steps.size(); ++i) {
        if (steps[i] < first_step) continue;
        ++counted;
        above += values[i] > curve_at(curve, static_cast<double>(steps[i])) ? 1 : 0;
      }
      out += fmt::format("  - seed {}, to step {}: the mean of its last {} evaluations ({}-{}) is {:.0f}, the "
                         "published mean over the same steps {:.0f}; above the published mean at {} of its {} "
                         "evaluations from step {}.\n",
                         run->seed, steps.back(), steps.size() - from, steps[from], steps.back(), mine / count,
                         published / count, above, counted, first_step);
    }
  }
  if (out.empty()) fail("no arm has a published {} curve to be read against", options.reference);
  if (!result.binaries_note.empty()) out += "\nNote: " + result.binaries_note + ".\n";
  return out;
}

std::string cost_markdown(const CompareResult& result, const std::vector<RunRecord>& runs,
                          const std::vector<std::string>& pooled) {
  const auto arms = group_into_arms(runs, pooled);
  // A run's metrics row at `step` (an evaluated step it has), or -1; then a column's value there, or NaN.
  const auto row_at = [](const RunRecord& run, std::int64_t step) {
    const auto steps = run.steps();
    const auto row = std::find(steps.begin(), steps.end(), step);
    return row == steps.end() ? std::ptrdiff_t{-1} : row - steps.begin();
  };
  const auto value = [](const RunRecord& run, std::ptrdiff_t row, const std::string& column) {
    if (row < 0 || !run.metrics.has(column)) return std::numeric_limits<double>::quiet_NaN();
    return run.metrics.rows[static_cast<std::size_t>(row)][run.metrics.index(column)];
  };
  std::string out;
  for (const CompareRow* row : last_difference_rows(result)) {
    const Contrast c = contrast_of(result, row->arm, row->baseline);
    const Arm& arm = arm_labelled(arms, row->arm);
    const Arm& base = arm_labelled(arms, row->baseline);
    std::vector<std::string> pairs;
    std::vector<double> ratios;
    for (const RunRecord* mine : arm.runs) {
      const auto theirs = std::find_if(base.runs.begin(), base.runs.end(),
                                       [&](const RunRecord* r) { return r->seed == mine->seed; });
      if (theirs == base.runs.end()) continue;
      const std::ptrdiff_t my_row = row_at(*mine, row->step), their_row = row_at(**theirs, row->step);
      const double wall = value(*mine, my_row, "wall_s"), base_wall = value(**theirs, their_row, "wall_s");
      if (!std::isfinite(wall) || !std::isfinite(base_wall) || base_wall <= 0) continue;
      std::vector<std::pair<double, std::string>> extra;
      for (const auto& column : mine->metrics.header) {
        if (!column.starts_with("time_")) continue;
        const double delta = value(*mine, my_row, column) - value(**theirs, their_row, column);
        if (std::isfinite(delta))
          extra.push_back({delta, fmt::format("{} {:+.0f}", column.substr(5, column.size() - 7), delta)});
      }
      std::sort(extra.begin(), extra.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
      std::vector<std::string> phases;
      for (const auto& [delta, text] : extra) phases.push_back(text);
      ratios.push_back(wall / base_wall);
      pairs.push_back(fmt::format("seed {}: {:.0f} s against {:.0f} s ({:.2f}x){}", mine->seed, wall, base_wall,
                                  wall / base_wall,
                                  phases.empty() ? "" : "; phase seconds, " + c.arm + " − " + c.baseline + ": " +
                                                            join(phases, ", ")));
    }
    if (pairs.empty()) continue;
    std::sort(ratios.begin(), ratios.end());
    const double median = ratios.size() % 2 ? ratios[ratios.size() / 2]
                                            : 0.5 * (ratios[ratios.size() / 2 - 1] + ratios[ratios.size() / 2]);
    out += fmt::format("- **{}**, {} against {} to step {}, runs matched by seed: {}; median ratio {:.2f}x over {}.\n",
                       c.context(), c.arm, c.baseline, row->step, join(pairs, "; "), median, seed_count(pairs.size()));
  }
  if (out.empty()) fail("no arm has a run of the same seed in its baseline to be costed against");
  out += "\nWall-clock seconds (`wall_s`) and phase timers include any time a run waited for a core; a pair's ratio "
         "is a cost only where both runs had their cores alike.\n";
  if (!result.binaries_note.empty()) out += "\nNote: " + result.binaries_note + ".\n";
  return out;
}

namespace {

std::string block_begin(const std::string& name) { return "<!-- tom compare " + name + ": "; }
std::string block_end(const std::string& name) { return "<!-- end of tom compare " + name + " -->"; }

}  // namespace

std::vector<GeneratedBlock> generated_blocks(const std::string& text) {
  std::vector<GeneratedBlock> out;
  const std::string opening = "<!-- tom compare ";
  for (std::size_t at = text.find(opening); at != std::string::npos; at = text.find(opening, at + 1)) {
    const auto colon = text.find(": ", at), close = text.find(" -->\n", at);
    if (colon == std::string::npos || close == std::string::npos || colon > close)
      fail("a generated block's first line must read <!-- tom compare NAME: ARGS --> (at character {})", at);
    GeneratedBlock block;
    block.name = text.substr(at + opening.size(), colon - at - opening.size());
    block.args = text.substr(colon + 2, close - colon - 2);
    const auto body = close + 5, end = text.find(block_end(block.name), body);
    if (end == std::string::npos) fail("generated block '{}' has no closing line {}", block.name, block_end(block.name));
    block.content = text.substr(body, end - body);
    out.push_back(std::move(block));
    at = end;
  }
  return out;
}

std::string with_generated_block(const std::string& text, const std::string& name, const std::string& args,
                                 const std::string& content) {
  if (name.empty() || name.find_first_of(" :\n") != std::string::npos)
    fail("a generated block's name must be one word without a colon (got '{}')", name);
  const std::string block = block_begin(name) + args + " -->\n" + content + block_end(name);
  const auto begin = text.find(block_begin(name));
  if (begin == std::string::npos) return text + (text.empty() || text.ends_with("\n\n") ? "" : text.ends_with("\n") ? "\n" : "\n\n") + block + "\n";
  const auto end = text.find(block_end(name), begin);
  if (end == std::string::npos) fail("generated block '{}' has no closing line {}", name, block_end(name));
  return text.substr(0, begin) + block + text.substr(end + block_end(name).size());
}

}  // namespace tom::runs
