#pragma once
// VaGraM (Voelcker et al., ICLR 2022): a value-gradient weighted model loss. A next-state
// error matters in the directions in which the value changes:
//
//   loss(row) = mean_v sum_i (g_v,i (pred_i - s'_i))^2 + (r_pred - r)^2,
//   g_v = d/ds' Q_v(s', a'),   v in {Q1, Q2, target Q1, target Q2},
//
// with g_v taken at the REAL next state s' of each replay transition, and each critic's
// gradient norm clipped at the `quantile` quantile of that critic's norms over the buffer.
//
// Choices:
// - a' = one action per transition, sampled from the current policy at s' (with the
//   backbone's generator) and then held fixed: the gradient is with respect to s' through
//   Q only; a' is a constant input (pi(s') is not differentiated). So g_v is the partial
//   derivative of Q_v(., a') at s'.
// - The gradients are computed once per plan() (the critics and policy do not change
//   during the model fit) and stored as h_i = mean_v g_v,i^2 per transition, [N, O] on
//   the CPU: mean_v sum_i (g_v,i e_i)^2 = sum_i h_i e_i^2 exactly, at a quarter of the
//   memory of the four gradients.
// - Errors are in raw units (pred - s' = mean[..., 1:] - target[..., 1:], both deltas from
//   the same obs); the reward error is unweighted. The model's predicted log-variance is
//   not used: the loss shapes the mean only (the variance is trained only through the
//   model's regulariser).
// - Transitions that ended an episode are treated like the others (Q at a terminal s' is
//   still differentiable, though its value is never bootstrapped).
// Weights over the buffer are uniform.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/core/settings.hpp"
#include "tom/objectives/model_objective.hpp"

namespace tom::objectives {

struct VagramSettings {
  double quantile = 0.95;
  int chunk = 4096;

  template <class V>
  void visit(V& v) {
    v("quantile", quantile, "each critic's value-gradient norm is clipped at this quantile of its norms",
      Range::probability());
    v("chunk", chunk, "transitions per batched gradient computation", Range::at_least(1));
  }

  // Throws tom::Error naming the first setting out of range.
  void check();
};

// One action a' ~ pi(s') per row of next_obs [N, O], drawn in chunks of `chunk` rows from
// `gen`. No gradient. Returns [N, A] (CPU).
torch::Tensor sample_next_actions(const agents::PolicyValue& agent, const torch::Tensor& next_obs, int chunk,
                                  torch::Generator& gen);

// d/ds' Q_v(s', a') per row for the critics {Q1, Q2, target Q1, target Q2}, with a' held
// fixed: [4, N, O] float (CPU). Computed in chunks of `chunk` rows with autograd on s'.
torch::Tensor value_gradients(const agents::PolicyValue& agent, const torch::Tensor& next_obs,
                              const torch::Tensor& next_action, int chunk);

// Clips each row's gradient g [C, N, O] to norm at most the `quantile` quantile (linear
// interpolation, as torch::quantile) of the row norms of its critic c. Returns the
// clipped gradients and the thresholds [C] (float64).
struct ClippedGradients {
  torch::Tensor gradients;   // [C, N, O]
  torch::Tensor thresholds;  // [C]
};
ClippedGradients clip_gradient_norms(const torch::Tensor& gradients, double quantile);

// The batch loss over per-transition squared-gradient weights h [N, O] (rows in the
// order of the Transitions given to fit()): for each row, sum_i h_i e_i^2 + e_r^2 with e
// the predicted mean minus the target. Returns [M, B]. Throws tom::Error on inputs of the
// wrong shape or indices outside [0, N).
models::BatchLoss vagram_batch_loss(torch::Tensor squared_gradients);

class VagramObjective final : public ModelObjective {
 public:
  // Throws tom::Error on out-of-range settings.
  explicit VagramObjective(VagramSettings settings);

  std::string name() const override { return "vagram"; }
  // Uniform weights (undefined tensor) and the value-gradient loss for this buffer.
  // Throws tom::Error on an empty buffer.
  FitPlan plan(const FitContext& context) override;
  // vagram_grad_norm: mean norm of the unclipped gradients over critics and transitions;
  // vagram_clip_threshold: mean clip threshold over the four critics.
  std::vector<std::string> metric_names() const override { return {"vagram_grad_norm", "vagram_clip_threshold"}; }
  std::vector<double> metric_values() const override { return {mean_norm_, mean_threshold_}; }
  // No state beyond the settings: everything is recomputed at each plan().

  const VagramSettings& settings() const { return settings_; }
  // Per-critic clip thresholds of the last plan() (Q1, Q2, target Q1, target Q2).
  const std::vector<double>& thresholds() const { return thresholds_; }

 private:
  VagramSettings settings_;
  double mean_norm_ = 0.0, mean_threshold_ = 0.0;
  std::vector<double> thresholds_;
};

}  // namespace tom::objectives
