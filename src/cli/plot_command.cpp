// tom plot: figures of runs or sweeps (learning curves, weight-vs-age, model error, phase times) via gnuplot.
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/runs/config.hpp"
#include "tom/figures/plots.hpp"
#include "tom/results/run_records.hpp"

namespace tom::cli {

void add_plot_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> paths;
    std::vector<std::string> kinds;
    std::string out;
    runs::PlotOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("plot", "draw figures of runs or sweeps with gnuplot (PNG or SVG)");
  cmd->add_option("dirs", args->paths, "run directories or sweep directories (searched for runs)")->required();
  cmd->add_option("--out", args->out, "directory for the figures (default: plots/ inside the first directory)");
  cmd->add_option("--figures", args->kinds, "all, curves, weights, model-error, phase-times (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--format", args->options.format, "png or svg")->capture_default_str();
  cmd->add_option("--width", args->options.width, "image width in pixels")->capture_default_str();
  cmd->add_option("--height", args->options.height, "image height in pixels")->capture_default_str();
  cmd->add_option("--metric", args->options.metric, "metrics.csv column of the learning curves")->capture_default_str();
  cmd->add_option("--reference", args->options.reference,
                  "overlay the published curve of the task: mbpo or sac (assets/reference_curves)");
  cmd->add_option("--reps", args->options.reps, "bootstrap resamples for the bands")->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->callback([args] {
    std::vector<std::filesystem::path> paths(args->paths.begin(), args->paths.end());
    const auto found = runs::find_runs(paths, runs::resumed_settings);
    auto options = args->options;
    options.out_dir = args->out.empty() ? paths.front() / "plots" : std::filesystem::path(args->out);
    const auto report = runs::make_plots(found, args->kinds, options);
    for (const auto& note : report.notes) fmt::print(stderr, "note: {}\n", note);
    for (const auto& file : report.files) fmt::print("{:<12} {}  (data: {})\n", file.kind, file.image.string(), file.data.string());
  });
}

}  // namespace tom::cli
