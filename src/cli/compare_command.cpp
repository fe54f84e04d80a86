// tom compare: runs or sweeps in, a table of per-arm statistics out (Markdown, CSV).
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/error.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/results_compare.hpp"

namespace tom::cli {

void add_compare_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> paths;
    std::vector<std::int64_t> steps;
    std::string md, csv;
    runs::CompareOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "compare", "compare runs across seeds: per arm (all settings but the seed) the IQM, mean, bootstrap CI and AUC");
  cmd->add_option("dirs", args->paths, "run directories or sweep directories (searched for runs)")->required();
  cmd->add_option("--metric", args->options.metric, "metrics.csv column to compare")->capture_default_str();
  cmd->add_option("--steps", args->steps, "steps to report (comma-separated; default: --points steps to the end)")
      ->delimiter(',');
  cmd->add_option("--points", args->options.points, "number of default steps across the budget")
      ->capture_default_str();
  cmd->add_option("--baseline", args->options.baseline,
                  "baseline arm as key=value, e.g. objective.name=mle (each arm is compared with the arm that "
                  "differs from it only there)");
  cmd->add_option("--reps", args->options.reps, "bootstrap resamples")->capture_default_str()->check(CLI::Range(1, 10000000));
  cmd->add_option("--confidence", args->options.confidence, "confidence level of the intervals")
      ->capture_default_str()->check(CLI::Range(0.5, 0.9999));
  cmd->add_option("--bootstrap-seed", args->options.seed, "seed of the bootstrap")->capture_default_str();
  cmd->add_option("--md", args->md, "also write the Markdown table to this file");
  cmd->add_option("--csv", args->csv, "write the table as CSV to this file");
  cmd->callback([args] {
    std::vector<std::filesystem::path> paths(args->paths.begin(), args->paths.end());
    const auto found = runs::find_runs(paths, runs::resumed_settings);
    auto options = args->options;
    options.steps = args->steps;
    const auto result = runs::compare_runs(found, options);
    const std::string md = runs::to_markdown(result);
    fmt::print("{}", md);
    if (!args->md.empty()) runs::write_file_atomic(args->md, md);
    if (!args->csv.empty()) runs::write_file_atomic(args->csv, runs::to_csv(result));
    for (const auto& note : result.notes) fmt::print(stderr, "note: {}\n", note);
  });
}

}  // namespace tom::cli
