#pragma once
// MBPO's probabilistic ensemble: E swish MLPs, each predicting a diagonal Gaussian over
// y = [reward, next_obs - obs], trained side by side on their own bootstrap samples. All
// members run as one batched computation: layer weights are [E, in, out] tensors and a
// layer is one baddbmm. The log-variance is soft-clamped between learned bounds
// (max_logvar/min_logvar, shared by the members) whose width is penalised.
#include <cstdint>
#include <vector>

#include "tom/models/dynamics_model.hpp"

namespace tom::models {

struct EnsembleSettings {
  int members = 7;
  int elites = 5;
  int hidden_layers = 4;
  int hidden_units = 200;
  double weight_decay_scale = 1.0;
  double logvar_bound_penalty = 0.01;
  bool bootstrap = true;
  FitSettings fit;

  template <class V>
  void visit(V& v) {
    v("members", members, "networks in the ensemble", Range::at_least(1));
    v("elites", elites, "best members (by held-out loss) used for prediction", Range::at_least(1));
    v("hidden_layers", hidden_layers, "hidden layers per member", Range::at_least(1));
    v("hidden_units", hidden_units, "units per hidden layer (MBPO: 200, Humanoid 400)", Range::at_least(1));
    v("weight_decay_scale", weight_decay_scale,
      "multiplies MBPO's per-layer L2 decays 2.5e-5, 5e-5, 7.5e-5..., 1e-4 (0: none)", Range::at_least(0));
    v("logvar_bound_penalty", logvar_bound_penalty, "weight of sum(max_logvar) - sum(min_logvar) in the loss",
      Range::at_least(0));
    v("bootstrap", bootstrap, "train each member on its own bootstrap resample of the training split");
    fit.visit(v);
  }
};

class ProbabilisticEnsemble final : public DynamicsModel {
 public:
  // Throws tom::Error on out-of-range settings (also elites > members).
  ProbabilisticEnsemble(std::int64_t obs_dim, std::int64_t action_dim, const EnsembleSettings& settings = {},
                        std::uint64_t seed = 0, torch::Device device = torch::kCPU);

  // Each row is predicted by a uniformly random elite, as in MBPO. Rows are dealt to the
  // elites by a random balanced partition, so each elite computes only its own rows.
  using DynamicsModel::sample;
  Prediction sample(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) override;
  Prediction mean(const torch::Tensor& obs, const torch::Tensor& action) override;
  std::int64_t predictors() const override { return settings_.elites; }
  // Block b of the rows is predicted by elite b (rows: a multiple of the elites).
  using DynamicsModel::sample_by_block;
  Prediction sample_by_block(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) override;

  const EnsembleSettings& settings() const { return settings_; }
  // The learned log-variance bounds [1, 1 + O] (normalised target units).
  const torch::Tensor& max_logvar() const { return params_[2 * layers_]; }
  const torch::Tensor& min_logvar() const { return params_[2 * layers_ + 1]; }

 protected:
  std::int64_t trained_members() const override { return settings_.members; }
  std::int64_t elite_count() const override { return settings_.elites; }
  bool bootstrap() const override { return settings_.bootstrap; }
  RowOutputs forward_rows(const torch::Tensor& inputs, const torch::Tensor& targets, bool with_moments) override;
  torch::Tensor regulariser() override;
  std::vector<std::pair<std::string, std::int64_t>> layout() const override;
  std::string kind() const override { return "probabilistic_ensemble"; }

 private:
  // Mean and bounded log-variance [K, B, D] for inputs [K, B, in] through the members
  // `members` (all when undefined).
  std::pair<torch::Tensor, torch::Tensor> network(const torch::Tensor& inputs, const torch::Tensor& members);
  // The elites as network()'s `members`: undefined when they are every member in order.
  torch::Tensor elite_members() const;

  EnsembleSettings settings_;
  std::int64_t layers_;  // weight matrices per member (hidden_layers + 1)
};

}  // namespace tom::models
