#pragma once
// VaGraM (Voelcker et al., ICLR 2022): a value-gradient weighted model loss. A next-state
// error matters in the directions in which the value changes. Two named forms
// (`vagram.form`), both built on g_v = d/ds' Q_v(s', a') for the critics
// v in {Q1, Q2, target Q1, target Q2}, taken at the REAL next state s' of each replay
// transition with a' = the policy's mean action there (as both authors' codes do):
//
//   published (pairlab/vagram, vaml_mlp.py, `use_scaling`), on the predicted mean:
//     loss(row) = mean_i mean_v (g_v,i e_i)^2 + e_r^2       [+ mean_j e_j^2 while warming up]
//   weighted-nll (the TOM authors' port, vaml.py:175-180, 199-301, with its defects fixed;
//   see docs/fidelity.md), on the model's own per-dimension likelihood:
//     loss(row) = mean_i (mean_v |g_v,i| scale_i) nll_i + nll_r  [+ mean_j nll_j while warming up]
//
// i runs over the O state dimensions, j over all 1 + O outputs; e = predicted mean -
// observed, raw units; nll_j the negative log-likelihood of output j in the model's
// normalised units, scale_i the target normaliser's scale of output i (so |g_i| scale_i is
// the value change per normalised unit: the port took raw gradients to normalised errors).
// Warming up: the fits within `mse_warmup_steps` env steps after exploration (both
// authors' codes: those of the first epoch). Each critic's gradient norm is clipped at the
// `quantile` quantile of that critic's norms over the buffer (pairlab's clip is written so
// that it never fires below a norm of 1e5; quantile = 1 reproduces that). The loss is also
// the fit's held-out score (early stopping), warm-up term included, as in vaml.py:154-172.
//
// Choices:
// - a' is a constant input: the gradient is with respect to s' through Q only.
// - The gradients are computed once per plan() (the critics and policy do not change
//   during the model fit) and kept as one [N, O] table per transition on the CPU: the mean
//   over critics of g^2 (published) or of |g| (weighted-nll).
// - The published form trains the mean only: the plan says so and rollouts step with the
//   model's mean (the published model is deterministic). The weighted NLL trains the whole
//   distribution.
// - `epoch` other than "model" is carried by the plan to the fit: the minibatches of
//   VaGraM's fits alone (the TOM code's VaGraM fit takes whole batches of a shuffled pass,
//   vaml.py:102-129, where its other fits draw with replacement).
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
  std::string form = "published";
  double quantile = 0.95;
  int mse_warmup_steps = 1000;
  std::string epoch = "model";
  int model_data_ramp_epochs = 0;
  int chunk = 4096;

  template <class V>
  void visit(V& v) {
    v("form", form,
      "published: value-gradient weighted squared error of the mean (pairlab/vagram); weighted-nll: "
      "the TOM authors' port, value-gradient weighted per-dimension NLL averaged over the state dimensions plus "
      "the reward's NLL, defects fixed",
      OneOf{"published", "weighted-nll"});
    v("quantile", quantile, "each critic's value-gradient norm is clipped at this quantile of its norms",
      Range::probability());
    v("mse_warmup_steps", mse_warmup_steps,
      "fits in this many env steps after exploration add an unweighted term: published, the mean squared error; "
      "weighted-nll, the mean NLL over all outputs (both authors' codes: the first epoch; the TOM code's add_mse)",
      Range::at_least(0));
    v("epoch", epoch,
      "minibatches of VaGraM's fits: model (the model's own epoch setting) or a value of it, for these fits alone "
      "(pass-drop-last: whole batches of a shuffled pass, as the TOM code's VaGraM fit)",
      OneOf{"model", "pass", "pass-drop-last", "draw"});
    v("model_data_ramp_epochs", model_data_ramp_epochs,
      "the TOM code's VaGraM runs: a SAC batch mixes model data in with probability 0.95 min(1, epoch / this) "
      "(epochs after exploration), else holds only its real part; 0: always mixes",
      Range::at_least(0));
    v("chunk", chunk, "transitions per batched gradient computation", Range::at_least(1));
  }

  // Throws tom::Error naming the first setting out of range.
  void check();
};

// The policy's mean action at each row of next_obs [N, O], in chunks of `chunk` rows. No
// gradient. Returns [N, A] (CPU).
torch::Tensor mean_next_actions(const agents::ValueFunction& agent, const torch::Tensor& next_obs, int chunk);

// d/ds' Q_v(s', a') per row for the critics {Q1, Q2, target Q1, target Q2}, with a' held
// fixed: [4, N, O] float (CPU). Computed in chunks of `chunk` rows with autograd on s'.
torch::Tensor value_gradients(const agents::ValueFunction& agent, const torch::Tensor& next_obs,
                              const torch::Tensor& next_action, int chunk);

// Clips each row's gradient g [C, N, O] to norm at most the `quantile` quantile (linear
// interpolation, as torch::quantile) of the row norms of its critic c. Returns the
// clipped gradients and the thresholds [C] (float64).
struct ClippedGradients {
  torch::Tensor gradients;   // [C, N, O]
  torch::Tensor thresholds;  // [C]
};
ClippedGradients clip_gradient_norms(const torch::Tensor& gradients, double quantile);

// The published batch loss over per-transition squared-gradient weights h [N, O] (rows
// in the order of the Transitions given to fit()): for each row, mean_i h_i e_i^2 + e_r^2,
// plus mean_j e_j^2 over all 1 + O outputs when add_mse. Returns [M, B]. Throws tom::Error
// on inputs of the wrong shape or indices outside [0, N).
models::BatchLoss vagram_batch_loss(torch::Tensor squared_gradients, bool add_mse);

// The weighted-NLL batch loss over per-transition gradient magnitudes m [N, O]: for each
// row, mean_i m_i scale_i nll_i + nll_r (BatchLossInput's dim_nll and target_scale), plus
// mean_j nll_j over all 1 + O outputs when add_nll. Returns [M, B]; throws tom::Error as
// vagram_batch_loss does.
models::BatchLoss vagram_weighted_nll_loss(torch::Tensor gradient_magnitudes, bool add_nll);

class VagramObjective final : public ModelObjective, public RampsModelData {
 public:
  // Throws tom::Error on out-of-range settings.
  explicit VagramObjective(VagramSettings settings);

  std::string name() const override { return "vagram"; }
  // Uniform weights (undefined tensor), the value-gradient loss of the form for this
  // buffer (with its warm-up term while warming up) and the `epoch` setting. Throws
  // tom::Error on an empty buffer.
  FitPlan plan(const FitContext& context) override;
  // vagram_grad_norm: mean norm of the unclipped gradients over critics and transitions;
  // vagram_clip_threshold: mean clip threshold over the four critics.
  void report(Figures& out) const override {
    out("vagram_grad_norm", mean_norm_);
    out("vagram_clip_threshold", mean_threshold_);
  }
  double model_data_probability(std::int64_t epoch) const override;
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
