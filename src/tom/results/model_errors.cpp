#include "tom/results/model_errors.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include "tom/core/error.hpp"
#include "tom/results/run_records.hpp"
#include "tom/runs/run.hpp"

namespace tom::runs {

ModelErrors model_errors(const std::vector<std::filesystem::path>& runs, std::int64_t fresh) {
  if (runs.empty()) fail("model-error needs at least one run directory");
  if (fresh < 1) fail("--fresh must be at least 1 (got {})", fresh);
  ModelErrors out;
  out.fresh = fresh;
  std::vector<RunModel> loaded;
  for (const auto& dir : runs) {
    loaded.push_back(load_run_model(dir));
    const RunModel& run = loaded.back();
    if (run.config.run.env != loaded.front().config.run.env)
      fail("{} is a run on {}, {} one on {}: models of different tasks cannot predict the same transitions",
           dir.string(), run.config.run.env, runs.front().string(), loaded.front().config.run.env);
    if (run.replay->size() < fresh)
      fail("{} holds {} transitions, fewer than --fresh {}", dir.string(), run.replay->size(), fresh);
    out.runs.push_back(dir.string());
    out.steps.push_back(run.step);
  }
  std::vector<data::Batch> newest;  // each data run's rows, gathered once
  for (const RunModel& data_run : loaded) newest.push_back(data_run.replay->newest(fresh));
  for (RunModel& model_run : loaded) {
    std::vector<double> row;
    for (const data::Batch& rows : newest) {
      const auto on_model = [&](const torch::Tensor& t) { return t.to(model_run.model->device()); };
      row.push_back(models::prediction_mse(*model_run.model, on_model(rows.obs), on_model(rows.action),
                                           on_model(rows.reward), on_model(rows.next_obs)));
    }
    out.mse.push_back(std::move(row));
  }
  return out;
}

std::string model_errors_csv(const ModelErrors& errors) {
  std::string csv = "model_run,model_step,data_run,data_step,fresh,mse\n";
  for (std::size_t m = 0; m < errors.runs.size(); ++m)
    for (std::size_t d = 0; d < errors.runs.size(); ++d)
      csv += fmt::format("{},{},{},{},{},{:.9g}\n", csv_quoted(errors.runs[m]), errors.steps[m],
                         csv_quoted(errors.runs[d]), errors.steps[d], errors.fresh, errors.mse[m][d]);
  return csv;
}

}  // namespace tom::runs
