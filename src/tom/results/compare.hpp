#pragma once
// `tom compare`: runs grouped into arms, a metric (evaluation return by default) at
// chosen steps, per arm the number of seeds, mean, interquartile mean (IQM) with a
// stratified-bootstrap confidence interval, the normalised area under the curve, and
// the difference to a baseline arm with its interval and Welch's test. A step an arm's
// run lacks is named in `notes`, never interpolated. No LibTorch here.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tom/results/run_records.hpp"
#include "tom/results/stats.hpp"

namespace tom::runs {

struct CompareOptions {
  std::string metric = "eval_return_mean";
  std::vector<std::int64_t> steps;  // empty: `points` steps across the budget, the last at the end
  // Also report, per arm, the last step that all of its runs and its baseline's (for a
  // baseline: the arms compared with it) reached (`--steps ...,last`), so arms with
  // different budgets meet their baselines at their own ends.
  bool last_common = false;
  int points = 10;
  std::string baseline;             // selector such as "objective.name=mle"; empty: none
  std::vector<std::string> pooled;  // settings left out of the arms (group_into_arms); each arm's mix is noted
  int reps = 2000;                  // bootstrap resamples
  double confidence = 0.95;
  std::uint64_t seed = 0;           // of the bootstrap
};

struct CompareRow {
  std::string arm;
  std::string quantity;  // the metric's name (its value at `step`) or "auc" (over the arm's common steps up to `step`)
  std::int64_t step = 0;
  int n = 0;             // seeds that have a value
  double mean = 0, iqm = 0;
  Interval ci;           // of the IQM
  std::optional<double> diff;  // IQM minus the baseline's IQM
  Interval diff_ci;
  std::optional<WelchTest> welch;  // of the means, against the baseline (two values or more on each side)
  std::vector<double> values, baseline_values;  // per seed: the arm's and (with a difference) its baseline's
  std::string baseline;  // the baseline arm's label, if any
};

struct CompareResult {
  std::string metric;
  double confidence = 0.95;
  std::vector<std::int64_t> steps;
  std::vector<std::string> arms;               // labels, in order
  std::vector<std::vector<std::string>> arm_runs;  // run directories of each arm
  std::vector<std::map<std::string, std::string>> arm_settings;  // each arm's settings (Arm::settings)
  std::vector<CompareRow> rows;
  std::vector<std::string> notes;              // missing/unequal steps and the like, named
  std::string binaries_note;                   // of `notes`, the one on which binaries ran the runs (if any)
};

// The default steps: `points` evaluation steps spread evenly over the largest step any
// run reached (each the evaluated step nearest to k/points of it), the last being that end.
std::vector<std::int64_t> default_steps(const std::vector<RunRecord>& runs, int points);

CompareResult compare_runs(const std::vector<RunRecord>& runs, const CompareOptions& options);

std::string to_markdown(const CompareResult& result);
std::string to_csv(const CompareResult& result);

}  // namespace tom::runs
