#pragma once
// Statements drawn from a comparison with a baseline (compare_runs with
// CompareOptions::baseline), each computed from the numbers it shows, so that result
// sentences in README.md and docs/ are generated, never typed:
// - one line per arm against its baseline at the arm's last reported step: the IQM
//   difference with its bootstrap interval, Welch's p, a verdict that says only what the
//   interval shows, and the seeds per arm that 80 % power would need at this difference;
// - the aggregate across tasks after rliable (Agarwal et al. 2021): each run's score at
//   its arm's last step normalised per task by a published curve, (R - P(0)) / (P(step) -
//   P(0)); the IQM over all runs of each side with a stratified-bootstrap interval (tasks
//   are the strata), and the probability of improvement P(arm > baseline), averaged over
//   tasks, with its interval.
// No LibTorch here.
#include <string>
#include <vector>

#include "tom/results/compare.hpp"

namespace tom::runs {

// Markdown bullet lines, one per arm that has a baseline difference.
std::string summary_markdown(const CompareResult& result);

struct AggregateOptions {
  std::string reference = "mbpo";  // published curve (assets/reference_curves) that normalises each task
  int reps = 2000;
  double confidence = 0.95;
  std::uint64_t seed = 0;
};
// A Markdown section; tasks without a published curve are left out and named in `notes`.
// Throws tom::Error when no arm has a baseline difference to aggregate.
std::string aggregate_markdown(const CompareResult& result, const AggregateOptions& options,
                               std::vector<std::string>& notes);

struct PublishedOptions {
  std::string reference = "mbpo";  // published curve (assets/reference_curves) each arm is read against
  int last = 10;                   // evaluations averaged at each run's end
};
// Each arm against the published curve of its task (the curve's mean, linear between its
// points): a line per arm with its IQM and interval at each reported step beside the
// published mean there; under it a line per run with the mean of its last `last`
// evaluations beside the published mean over the same steps (a single evaluation after a
// jump says little), and at how many of its evaluations from the first reported step on
// it is above the published mean. Arms are regrouped from `runs` as compare_runs grouped
// them (`pooled` as given to it). Tasks without a curve are left out and named in `notes`;
// throws tom::Error when no arm has one.
std::string published_markdown(const CompareResult& result, const std::vector<RunRecord>& runs,
                               const std::vector<std::string>& pooled, const PublishedOptions& options,
                               std::vector<std::string>& notes);

// What an arm costs against its baseline, seed by seed (runs matched by seed, so each
// pair shared its machine's conditions as far as the runs did): at the arm's last
// difference step, each pair's wall-clock seconds and their ratio, and the extra seconds
// of every phase timer (time_* columns) both runs have, largest first; then the median
// ratio over the pairs. Wall clocks include any waiting for a core, which a pair does not
// share by construction: a line says so. Throws tom::Error when no arm has a baseline or no
// seed is in both.
std::string cost_markdown(const CompareResult& result, const std::vector<RunRecord>& runs,
                          const std::vector<std::string>& pooled);

// Generated blocks in Markdown files: the lines between
//   <!-- tom compare NAME: ARGS -->
//   <!-- end of tom compare NAME -->
// hold what `tom compare ARGS` printed, so a test can run ARGS again and find a block
// that no longer matches the committed runs.
struct GeneratedBlock {
  std::string name, args, content;
};
// Every block of `text`, in order; throws tom::Error naming a block that is not closed.
std::vector<GeneratedBlock> generated_blocks(const std::string& text);
// `text` with block NAME's arguments and content replaced (appended at the end, after a
// blank line, when there is none). Throws for a name with spaces or a colon.
std::string with_generated_block(const std::string& text, const std::string& name, const std::string& args,
                                 const std::string& content);

}  // namespace tom::runs
