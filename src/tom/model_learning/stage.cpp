#include "tom/model_learning/stage.hpp"

#include <utility>

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/phase_timer.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::model_learning {

FitData fit_data_from_name(const std::string& name) {
  if (name == "buffer") return FitData::buffer;
  if (name == "bootstrap") return FitData::bootstrap;
  fail_unknown("unknown fit data '{}' (valid: buffer, bootstrap)", name);
}

Stage::Stage(std::unique_ptr<models::DynamicsModel> model, std::unique_ptr<objectives::ModelObjective> objective,
             FitData fit_data)
    : model_(std::move(model)),
      objective_(objective ? std::move(objective) : std::make_unique<objectives::MleObjective>()),
      hears_updates_(dynamic_cast<objectives::HearsPolicyUpdates*>(objective_.get())),
      ramps_model_data_(dynamic_cast<const objectives::RampsModelData*>(objective_.get())),
      fit_data_(fit_data) {
  if (!model_) fail("the model-learning stage needs a dynamics model");
  last_weights_.age_bins.assign(kWeightBins, 1.0);
}

Fitted Stage::fit(const FitRequest& request) {
  measure_fresh_error(request.replay);
  objectives::FitPlan plan;
  {
    PhaseTimer timer(work_.objective_s);
    plan = objective_->plan(
        {request.replay, request.views, request.env_steps, request.exploration_steps, request.gen});
  }
  record_weights(plan, request.replay, request.env_steps);
  fit_model(plan, request.replay, request.gen);
  return {plan.start_weights, plan.trains_distribution, plan.fit_weights};
}

void Stage::measure_fresh_error(const data::ReplayBuffer& replay) {
  const std::int64_t fresh = std::min(replay.size(), replay.total_added() - work_.fitted_through);
  if (work_.fits == 0 || fresh <= 0) return;
  const data::Batch rows = replay.newest(fresh);
  work_.fresh_mse = models::prediction_mse(*model_, rows.obs, rows.action, rows.reward, rows.next_obs);
}

void Stage::record_weights(const objectives::FitPlan& plan, const data::ReplayBuffer& replay,
                           std::int64_t env_steps) {
  last_weights_ = objectives::summarise_weights(plan.fit_weights, replay.insertion_index(), 1000, kWeightBins);
  std::vector<double> row{static_cast<double>(env_steps)};
  row.insert(row.end(), last_weights_.age_bins.begin(), last_weights_.age_bins.end());
  weight_rows_.push_back(std::move(row));
}

void Stage::fit_model(const objectives::FitPlan& plan, const data::ReplayBuffer& replay, torch::Generator& gen) {
  PhaseTimer timer(work_.fit_s);
  models::Transitions data = plan.data;
  data::Weights weights = plan.fit_weights;
  if (fit_data_ == FitData::bootstrap) {
    // A resample of the plan's rows with replacement; each row keeps its weight and its
    // slot (for a custom loss's lookups).
    const std::int64_t n = plan.data.obs.size(0);
    const auto rows = torch::randint(n, {n}, gen, torch::kInt64);
    const auto on_data = rows.to(plan.data.obs.device());
    data = {plan.data.obs.index_select(0, on_data), plan.data.action.index_select(0, on_data),
            plan.data.reward.index_select(0, on_data), plan.data.next_obs.index_select(0, on_data),
            plan.data.origin.defined() ? plan.data.origin.index_select(0, rows) : rows};
    weights = weights.resampled(rows);
  }
  const models::FitReport fit = model_->fit(data, weights, plan.loss, plan.holdout_ratio, plan.epoch);
  last_fit_ = {fit.train_nll, fit.holdout_nll, fit.train_mse, fit.holdout_mse, static_cast<double>(fit.epochs)};
  work_.fits += 1;
  work_.gradient_steps += static_cast<double>(fit.gradient_steps);
  work_.fitted_through = replay.total_added();
}

std::vector<std::vector<double>> Stage::take_weight_rows() { return std::exchange(weight_rows_, {}); }

void Stage::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive model, objective;
  model_->save(model);
  objective_->save(objective);
  archive.write("model", model);
  archive.write("objective", objective);
  write_string(archive, "objective_name", objective_->name());
  save_fields(archive, "last_fit", last_fit_);
  save_fields(archive, "fit_work", work_);
  save_fields(archive, "weight_summary", last_weights_);
  archive.write("weight_age_bins", torch::tensor(last_weights_.age_bins, torch::kFloat64));
}

void Stage::load(torch::serialize::InputArchive& archive) {
  const std::string objective_name = read_string(archive, "objective_name", "the model-learning stage");
  if (objective_name != objective_->name())
    fail("the checkpoint was written with model objective '{}', this run uses '{}'", objective_name,
         objective_->name());
  torch::serialize::InputArchive model, objective;
  if (!archive.try_read("model", model) || !archive.try_read("objective", objective))
    fail("the checkpoint holds no dynamics model or model objective");
  model_->load(model);
  objective_->load(objective);
  load_fields(archive, "last_fit", last_fit_, "the model-learning stage");
  load_fields(archive, "fit_work", work_, "the model-learning stage");
  load_fields(archive, "weight_summary", last_weights_, "the model-learning stage");
  last_weights_.age_bins = read_doubles(archive, "weight_age_bins", kWeightBins, "the model-learning stage");
}

}  // namespace tom::model_learning
