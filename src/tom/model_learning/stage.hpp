#pragma once
// The model-learning stage: what a model-based backbone calls to (re)fit its dynamics
// model, whatever the backbone. It owns the model, the model-learning objective (MLE,
// TOM, PMAC, VaGraM: objectives/make_objective.hpp), the weight-vs-age log and the fit's
// figures, and checkpoints them. Each fit():
//
//   1. measures the model's error on the transitions collected since the last fit;
//   2. asks the objective for a plan (the fit's weights, the rollout starts' weights, the
//      loss shape) from the replay buffer and the views the backbone offers;
//   3. logs the fit weights by age (a weights.csv row);
//   4. fits the model to the replay buffer (or a bootstrap resample of it) by the plan;
//
// and returns the starts' weights and how to step the model. MBPO and PETS
// (backbones/) drive it; a C++ user drives it the same way on their own transitions:
//
//   model_learning::Stage stage(models::make_model(...), objectives::make_objective(...));
//   const auto fitted = stage.fit({replay, {.policy = &my_policy}, env_steps, 0, gen});
//   auto starts = replay.sample_weighted(1000, fitted.start_weights, gen);
//   models::sample_step(stage.model(), starts.obs, actions, is_terminal, fitted.sample);
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include "tom/core/figures.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/data/weights.hpp"
#include "tom/models/dynamics_model.hpp"
#include "tom/objectives/model_objective.hpp"

namespace tom::model_learning {

// What each fit trains on: every replay transition once, or a resample of the buffer with
// replacement (the TOM authors' code).
enum class FitData { buffer, bootstrap };
FitData fit_data_from_name(const std::string& name);

struct FitRequest {
  const data::ReplayBuffer& replay;  // the transitions to learn from
  objectives::BackboneViews views;   // what the backbone offers the objective
  std::int64_t env_steps;            // real env steps so far
  std::int64_t exploration_steps;    // the first env steps, which explored before any learning
  torch::Generator& gen;             // the owner's generator (checkpointed by the owner)
};

struct Fitted {
  data::Weights start_weights;  // how likely each replay slot's state starts a rollout
  // Step the model with a sample of its distribution (true) or with its mean (false: the
  // objective's loss shaped only the mean, so the variances were never trained).
  bool sample = true;
  data::Weights fit_weights;  // how much each replay slot's transition counted in the fit
};

// The last fit's figures, as metrics.csv reports them.
struct FitFigures {
  double train_nll = 0, holdout_nll = 0, train_mse = 0, holdout_mse = 0, epochs = 0;
  template <class V>
  void visit(V& v) {
    v("model_train_nll", train_nll);
    v("model_holdout_nll", holdout_nll);
    v("model_train_mse", train_mse);
    v("model_holdout_mse", holdout_mse);
    v("model_fit_epochs", epochs);
  }
};

// Work done so far.
struct FitWork {
  double fits = 0, gradient_steps = 0;
  double fit_s = 0, objective_s = 0;  // seconds in the model fits, and in the objective's plans
  std::int64_t fitted_through = 0;    // replay insertions the model has been fitted on
  double fresh_mse = 0;  // the model's error on the transitions collected between the last two fits
  template <class V>
  void visit(V& v) {
    v("model_fits", fits);
    v("model_gradient_steps", gradient_steps);
    v("time_model_fit_s", fit_s);
    v("time_objective_s", objective_s);
    v("fitted_through", fitted_through);
    v("model_fresh_mse", fresh_mse);
  }
};

class Stage {
 public:
  static constexpr int kWeightBins = 100;  // age bins of a weights.csv row

  // objective: null means plain maximum likelihood (mle).
  Stage(std::unique_ptr<models::DynamicsModel> model, std::unique_ptr<objectives::ModelObjective> objective,
        FitData fit_data = FitData::buffer);

  Fitted fit(const FitRequest& request);

  // To the objective's optional parts (objectives/model_objective.hpp), where it has them:
  // after each burst of policy updates, and the share of policy batches that mix model
  // data in (1 without).
  void policy_updated(std::int64_t total_added) {
    if (hears_updates_) hears_updates_->policy_updated(total_added);
  }
  double model_data_probability(std::int64_t epoch) const {
    return ramps_model_data_ ? ramps_model_data_->model_data_probability(epoch) : 1.0;
  }

  models::DynamicsModel& model() { return *model_; }
  // The fitted model, taken out of a stage that is done with it.
  std::unique_ptr<models::DynamicsModel> release_model() && { return std::move(model_); }
  const models::DynamicsModel& model() const { return *model_; }
  const objectives::ModelObjective& objective() const { return *objective_; }
  const FitFigures& last_fit() const { return last_fit_; }
  const FitWork& work() const { return work_; }
  const objectives::WeightSummary& weights() const { return last_weights_; }
  // The objective's own figures of its last plan (extra metrics.csv columns).
  void report_objective(Figures& out) const { objective_->report(out); }
  // The weights.csv rows (step, then the mean fit weight per age bin, oldest first) of the
  // fits since the last call.
  std::vector<std::vector<double>> take_weight_rows();

  // Under the keys "model" (what tom model-error reads), "objective", "objective_name",
  // "last_fit", "fit_work", "weight_summary" and "weight_age_bins".
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  void measure_fresh_error(const data::ReplayBuffer& replay);
  void record_weights(const objectives::FitPlan& plan, const data::ReplayBuffer& replay, std::int64_t env_steps);
  void fit_model(const objectives::FitPlan& plan, const data::ReplayBuffer& replay, torch::Generator& gen);

  std::unique_ptr<models::DynamicsModel> model_;
  std::unique_ptr<objectives::ModelObjective> objective_;
  objectives::HearsPolicyUpdates* hears_updates_;  // the objective's optional parts, or null
  const objectives::RampsModelData* ramps_model_data_;
  FitData fit_data_;
  FitFigures last_fit_;
  FitWork work_;
  objectives::WeightSummary last_weights_;
  std::vector<std::vector<double>> weight_rows_;
};

}  // namespace tom::model_learning
