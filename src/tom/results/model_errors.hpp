#pragma once
// `tom model-error`: learned dynamics models scored on the same transitions. Each run's
// model (its latest checkpoint) predicts each run's newest real transitions, the data its
// current policy made; within one column every model sees the same rows, so the column
// compares models like for like. The diagonal is what the run's own model_fresh_mse
// measures at its next fit step when `fresh` is the transitions since its last fit.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tom::runs {

struct ModelErrors {
  std::vector<std::string> runs;         // model runs = data runs, in the order given
  std::vector<std::int64_t> steps;       // each run's checkpoint step
  std::int64_t fresh = 0;                // transitions per data run
  std::vector<std::vector<double>> mse;  // [model run][data run]: prediction_mse, raw units
};

// Throws tom::Error for a run without a dynamics model, runs of different tasks, fresh < 1
// or a run with fewer than `fresh` stored transitions.
ModelErrors model_errors(const std::vector<std::filesystem::path>& runs, std::int64_t fresh);

// One row per (model run, data run): model_run,model_step,data_run,data_step,fresh,mse.
std::string model_errors_csv(const ModelErrors& errors);

}  // namespace tom::runs
