// tom compare: runs or sweeps in, a table of per-arm statistics out (Markdown, CSV).
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/error.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/results/compare.hpp"
#include "tom/results/report.hpp"

namespace tom::cli {

namespace {

// "20000,30000,last": numbers are steps; "last" asks for each arm's last common step.
void parse_steps(const std::vector<std::string>& items, runs::CompareOptions& options) {
  for (const auto& item : items) {
    if (item == "last") {
      options.last_common = true;
      continue;
    }
    std::size_t used = 0;
    std::int64_t step = -1;
    try {
      step = std::stoll(item, &used);
    } catch (const std::exception&) {
    }
    if (used != item.size() || step < 0) fail("--steps: '{}' is neither a step (a whole number) nor 'last'", item);
    options.steps.push_back(step);
  }
}

}  // namespace

void add_compare_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> paths, steps;
    std::string md, csv, into, block;
    bool summary = false, aggregate = false, published = false, cost = false;
    runs::CompareOptions options;
    runs::AggregateOptions aggregate_options;
    runs::PublishedOptions published_options;

    // The arguments that reproduce the printed text, as a generated block records them.
    std::string reproducing_args() const {
      std::vector<std::string> out(paths.begin(), paths.end());
      const runs::CompareOptions defaults;
      if (options.metric != defaults.metric) out.push_back("--metric " + options.metric);
      if (!steps.empty()) out.push_back("--steps " + join(steps, ","));
      if (options.points != defaults.points) out.push_back(fmt::format("--points {}", options.points));
      if (!options.baseline.empty()) out.push_back("--baseline " + options.baseline);
      if (!options.pooled.empty()) out.push_back("--pool " + join(options.pooled, ","));
      if (options.reps != defaults.reps) out.push_back(fmt::format("--reps {}", options.reps));
      if (options.confidence != defaults.confidence) out.push_back(fmt::format("--confidence {}", options.confidence));
      if (options.seed != defaults.seed) out.push_back(fmt::format("--bootstrap-seed {}", options.seed));
      if (summary) out.push_back("--summary");
      if (aggregate) out.push_back("--aggregate");
      if (published) out.push_back("--published");
      if (cost) out.push_back("--cost");
      if (published_options.last != runs::PublishedOptions{}.last)
        out.push_back(fmt::format("--last-evaluations {}", published_options.last));
      if (aggregate_options.reference != runs::AggregateOptions{}.reference)
        out.push_back("--reference " + aggregate_options.reference);
      return join(out, " ");
    }
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "compare", "compare runs across seeds: per arm (all settings but the seed) the IQM, mean, bootstrap CI and AUC");
  cmd->add_option("dirs", args->paths, "run directories or sweep directories (searched for runs)")->required();
  cmd->add_option("--metric", args->options.metric, "metrics.csv column to compare")->capture_default_str();
  cmd->add_option("--steps", args->steps,
                  "steps to report (comma-separated; 'last' adds each arm's last step that all its runs and its "
                  "baseline's reached; default: --points steps to the end)")
      ->delimiter(',');
  cmd->add_option("--points", args->options.points, "number of default steps across the budget")
      ->capture_default_str();
  cmd->add_option("--baseline", args->options.baseline,
                  "baseline arm as key=value, e.g. objective.name=mle (each arm is compared with the arm that "
                  "differs from it only there; the difference gets its bootstrap interval and Welch's test)");
  cmd->add_option("--pool", args->options.pooled,
                  "settings to leave out of the arms (comma-separated section.name, or section.* for a whole "
                  "section), so runs that differ only there are pooled; each arm's mix is noted")
      ->delimiter(',');
  cmd->add_option("--reps", args->options.reps, "bootstrap resamples")->capture_default_str()->check(CLI::Range(1, 10000000));
  cmd->add_option("--confidence", args->options.confidence, "confidence level of the intervals")
      ->capture_default_str()->check(CLI::Range(0.5, 0.9999));
  cmd->add_option("--bootstrap-seed", args->options.seed, "seed of the bootstrap")->capture_default_str();
  cmd->add_flag("--summary", args->summary,
                "print one line per arm against its baseline at its last step (difference, interval, Welch p, "
                "verdict, seeds needed for 80 % power) instead of the table; needs --baseline");
  cmd->add_flag("--aggregate", args->aggregate,
                "add the aggregate across tasks: scores normalised by the published curve (--reference), IQM "
                "and probability of improvement with intervals; needs --baseline");
  cmd->add_flag("--published", args->published,
                "print each arm against the published curve of its task (--reference) instead of the table: its "
                "IQM at each step beside the published mean, and per run the mean of its last evaluations and how "
                "often it is above the published mean");
  cmd->add_flag("--cost", args->cost,
                "print what each arm costs against its baseline instead of the table, runs matched by seed: wall "
                "seconds and their ratio, and the extra seconds of each phase; needs --baseline");
  cmd->add_option("--last-evaluations", args->published_options.last,
                  "--published: evaluations averaged at each run's end")
      ->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--reference", args->aggregate_options.reference,
                  "published curve that normalises each task's scores for --aggregate, or that --published reads "
                  "arms against (mbpo or sac)")
      ->capture_default_str()->check(CLI::IsMember({"mbpo", "sac"}));
  cmd->add_option("--md", args->md, "also write the Markdown table to this file");
  cmd->add_option("--csv", args->csv, "write the table as CSV to this file");
  cmd->add_option("--into", args->into,
                  "write what is printed into this Markdown file, between the markers of --block (replacing that "
                  "block, or appending it); the begin marker records the arguments, so a test can check it");
  cmd->add_option("--block", args->block, "name of the generated block for --into");
  cmd->callback([args] {
    if (args->into.empty() != args->block.empty()) fail("--into and --block go together");
    if ((args->summary || args->aggregate) && args->options.baseline.empty())
      fail("--summary and --aggregate compare arms with a baseline: give --baseline (e.g. objective.name=mle)");
    std::vector<std::filesystem::path> paths(args->paths.begin(), args->paths.end());
    const auto found = runs::find_runs(paths, runs::resumed_settings);
    auto options = args->options;
    parse_steps(args->steps, options);
    auto result = runs::compare_runs(found, options);
    if (args->published + args->cost + (args->summary || args->aggregate) > 1)
      fail("--summary/--aggregate, --published and --cost each print their own statements: give one of them");
    if (args->cost && args->options.baseline.empty())
      fail("--cost compares arms with a baseline: give --baseline (e.g. objective.name=mle)");
    std::string text;
    if (args->summary) {
      text = runs::summary_markdown(result);
    } else if (args->cost) {
      text = runs::cost_markdown(result, found, options.pooled);
    } else if (args->published) {
      auto published_options = args->published_options;
      published_options.reference = args->aggregate_options.reference;
      text = runs::published_markdown(result, found, options.pooled, published_options, result.notes);
    } else {
      std::string aggregate;
      if (args->aggregate) {
        auto aggregate_options = args->aggregate_options;
        aggregate_options.reps = options.reps;
        aggregate_options.confidence = options.confidence;
        aggregate_options.seed = options.seed;
        aggregate = "\n## Across tasks\n\n" + runs::aggregate_markdown(result, aggregate_options, result.notes);
      }
      text = runs::to_markdown(result) + aggregate;
    }
    fmt::print("{}", text);
    if (!args->md.empty()) runs::write_file_atomic(args->md, text);
    if (!args->csv.empty()) runs::write_file_atomic(args->csv, runs::to_csv(result));
    if (!args->into.empty()) {
      const std::filesystem::path file = args->into;
      const std::string before = std::filesystem::exists(file) ? runs::read_file(file) : std::string();
      runs::write_file_atomic(file, runs::with_generated_block(before, args->block, args->reproducing_args(), text));
    }
    for (const auto& note : result.notes) fmt::print(stderr, "note: {}\n", note);
  });
}

}  // namespace tom::cli
