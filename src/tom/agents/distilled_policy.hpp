#pragma once
// A stochastic policy fitted to what a planner did: the view a planning backbone (PETS)
// offers model-learning objectives that need a policy (TOM: a ~ pi(.|s') for a batch of
// replay states; PMAC: snapshots of the policy). A planner cannot be asked for actions on
// a million states, so before each model fit the backbone fits this network by maximum
// likelihood to the actions the planner executed in its most recent transitions; it then
// stands for the current policy.
//
// The network is SAC's policy shape: a ReLU MLP to [mean, raw log-std] of a Gaussian in
// u, squashed by tanh onto the action bounds (agents/squashed_gaussian.hpp). The fit
// maximises the likelihood of u = atanh(the executed action scaled to [-1, 1]), clipped
// inside +-(1 - 1e-4) so the bounds stay finite.
#include <cstdint>
#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include "tom/agents/policy_value.hpp"
#include "tom/core/settings.hpp"
#include "tom/nn/adam.hpp"
#include "tom/nn/flat_mlp.hpp"

namespace tom::agents {

struct DistillSettings {
  int hidden_size = 200;
  int hidden_layers = 2;
  double lr = 1e-3;
  int steps = 200;        // gradient steps per fit
  int batch = 256;
  std::int64_t window = 5000;  // the newest transitions the policy is fitted to

  template <class V>
  void visit(V& v) {
    v("hidden_size", hidden_size, "units per hidden layer of the distilled policy", Range::at_least(1));
    v("hidden_layers", hidden_layers, "hidden layers of the distilled policy", Range::at_least(1));
    v("lr", lr, "Adam learning rate of the distilled policy", Range::positive());
    v("steps", steps, "gradient steps of each distillation (before each model fit)", Range::at_least(0));
    v("batch", batch, "transitions per distillation step", Range::at_least(1));
    v("window", window, "newest transitions (the planner's latest actions) the policy is fitted to",
      Range::at_least(1));
  }
};

// What a distillation reports: the mean negative log-likelihood of the executed actions
// (in u) over its last steps, and how far the squashed mean is from them (RMS, action units).
struct DistillFigures {
  double nll = 0, action_rmse = 0;
  template <class V>
  void visit(V& v) {
    v("distill_nll", nll);
    v("distill_action_rmse", action_rmse);
  }
};

class DistilledPolicy final : public ActionSampler, public PolicySnapshots {
 public:
  DistilledPolicy(const DistillSettings& settings, int obs_dim, const std::vector<double>& low,
                  const std::vector<double>& high, std::uint64_t seed = 0, torch::Device device = torch::kCPU);

  // Fits the policy to obs [N, O] and the actions taken there [N, A] (env units).
  DistillFigures fit(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen);

  int obs_dim() const override { return obs_dim_; }
  int action_dim() const override { return action_dim_; }
  ActionSample sample_actions(const torch::Tensor& obs, torch::Generator& gen) const override;
  torch::Tensor policy_parameters() const override { return net_.parameters().clone(); }
  GaussianHead policy_gaussian(const torch::Tensor& obs, const torch::Tensor& parameters) const override;
  const DistillSettings& settings() const { return settings_; }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  torch::Tensor head(const torch::Tensor& obs, const torch::Tensor& parameters) const;

  DistillSettings settings_;
  int obs_dim_, action_dim_;
  torch::Device device_;
  torch::Tensor scale_, offset_;  // [A]: action = offset + scale * tanh(u)
  torch::Generator init_gen_;
  nn::FlatMlp net_;
  nn::FlatAdam adam_;
};

}  // namespace tom::agents
