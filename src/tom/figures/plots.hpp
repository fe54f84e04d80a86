#pragma once
// `tom plot`: figures of runs, drawn by gnuplot (Debian's gnuplot-nox; pngcairo or svg).
// Each figure is written with the data file gnuplot read (`<name>.dat`) and its script
// (`<name>.gp`) beside it, so what is drawn can be checked against metrics.csv and redrawn.
// No LibTorch here.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tom/results/run_records.hpp"

namespace tom::runs {

struct PlotOptions {
  std::filesystem::path out_dir;
  std::string format = "png";  // png or svg
  int width = 960, height = 600;
  std::string metric = "eval_return_mean";
  std::string reference;  // "", "mbpo" or "sac": overlay the published curve of each task
  int reps = 1000;        // bootstrap resamples for the bands
  double confidence = 0.95;
};

struct PlotFile {
  std::string kind;  // curves, weights, model_error, phase_times
  std::filesystem::path image, data;
};

struct PlotReport {
  std::vector<PlotFile> files;
  std::vector<std::string> notes;  // what was skipped and why
};

// The figures to draw: any of "curves", "weights", "model-error", "phase-times" ("all": each
// that the runs have data for). Throws tom::Error for bad options or a failing gnuplot.
PlotReport make_plots(const std::vector<RunRecord>& runs, const std::vector<std::string>& kinds,
                      const PlotOptions& options);

// Learning curves: one figure per task, each arm's mean over seeds with a bootstrap
// interval band of the mean (seeds missing a step are left out there and named).
PlotFile plot_learning_curves(const std::vector<const RunRecord*>& runs, const std::string& env,
                              const PlotOptions& options, std::vector<std::string>& notes);
// Weight-vs-age heatmap from one run's weights.csv (x: age bin, oldest to newest; y: step).
PlotFile plot_weight_heatmap(const RunRecord& run, const std::string& name, const PlotOptions& options);
// Model error on fresh data (model_fresh_mse) against steps, one line per run.
PlotFile plot_model_error(const std::vector<RunRecord>& runs, const PlotOptions& options,
                          std::vector<std::string>& notes);
// Seconds per phase at the end of each run (time_*_s), averaged over each arm's seeds, stacked.
PlotFile plot_phase_times(const std::vector<RunRecord>& runs, const PlotOptions& options,
                          std::vector<std::string>& notes);

// Width and height of a PNG or SVG file as written by gnuplot; throws if it is neither.
std::pair<int, int> image_size(const std::filesystem::path& file);

}  // namespace tom::runs
