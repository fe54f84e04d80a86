#pragma once
// What a backbone can offer the model-learning objectives, one narrow view per need:
//
//   ActionSampler     a ~ pi(.|s) for a batch of states        (TOM's dual: pi(s'), pi(s0))
//   ValueFunction     the policy's deterministic action and Q  (VaGraM: dQ/ds')
//   PolicySnapshots   the policy as a snapshot, its Gaussian   (PMAC: policy changes)
//
// SAC offers all three; a planner (PETS) offers what it can compute. An objective lists
// the views it needs (objectives/objective_registry.hpp) and a backbone those it offers,
// so a combination that lacks one is refused when the settings are read.
//
// Units: observations and actions are in environment units (actions within the env's
// bounds). Log-probabilities are those of the normalised action tanh(u) in [-1, 1]^A,
// which differ from densities in env units by a constant (the log of the bound scale).
// All results are differentiable with respect to the inputs (e.g. dQ/ds' for VaGraM)
// when those require grad; the agent's parameters never receive gradients here. Run
// under torch::NoGradGuard when no gradient is needed.
#include <torch/torch.h>

namespace tom::agents {

struct ActionSample {
  torch::Tensor action;    // [B, A], env units
  torch::Tensor log_prob;  // [B]
};

struct TwinQ {
  torch::Tensor q1, q2;  // [B] each
  torch::Tensor min() const { return torch::min(q1, q2); }
};

// The policy's Gaussian before the tanh squashing: per state, mean and log-std [B, A]
// (log-std clamped as in sampling). The squashing is a bijection, so distances between
// two such policies (e.g. total variation) equal those between their Gaussians.
struct GaussianHead {
  torch::Tensor mean, log_std;
};

class ActionSampler {
 public:
  virtual ~ActionSampler() = default;
  virtual int obs_dim() const = 0;
  virtual int action_dim() const = 0;
  // Stochastic actions a ~ pi(.|obs) for obs [B, O]; the noise is drawn from `gen`.
  virtual ActionSample sample_actions(const torch::Tensor& obs, torch::Generator& gen) const = 0;
};

class ValueFunction {
 public:
  virtual ~ValueFunction() = default;
  virtual int obs_dim() const = 0;
  virtual int action_dim() const = 0;
  // The deterministic action for obs [B, O]: the squashed mean, [B, A] in env units.
  virtual torch::Tensor mean_actions(const torch::Tensor& obs) const = 0;
  // Q(obs, action) of both online critics, and of both target critics.
  virtual TwinQ q_values(const torch::Tensor& obs, const torch::Tensor& action) const = 0;
  virtual TwinQ target_q_values(const torch::Tensor& obs, const torch::Tensor& action) const = 0;
};

class PolicySnapshots {
 public:
  virtual ~PolicySnapshots() = default;
  virtual int obs_dim() const = 0;
  // A copy of the policy's parameters (a snapshot), and the Gaussian head of the policy
  // with the given parameters (this policy's or an earlier snapshot's) on obs [B, O].
  virtual torch::Tensor policy_parameters() const = 0;
  virtual GaussianHead policy_gaussian(const torch::Tensor& obs, const torch::Tensor& parameters) const = 0;
};

}  // namespace tom::agents
