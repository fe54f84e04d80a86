#pragma once
// The pluggable model-learning objective: before each model fit, the backbone asks it
// for a plan: the transitions to fit, the weight each gets and (for value-aware losses)
// how the model loss is shaped. Its weights drive both the weighted fit and the choice
// of rollout start states (sampled with probability proportional to the weight); the
// plan names each set, so an objective may clip the fit's weights and not the starts'.
//
//   mle     uniform weights: plain MBPO
//   tom     Transition Occupancy Matching (tom_objective.hpp)
//   pmac    policy-adapted recency weighting (pmac_objective.hpp)
//   vagram  value-gradient weighted model loss (vagram_objective.hpp)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/agents/policy_value.hpp"
#include "tom/core/figures.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/models/dynamics_model.hpp"

namespace tom::objectives {

// What a backbone offers model learning (agents/policy_value.hpp): null where it has none.
struct BackboneViews {
  const agents::ActionSampler* policy = nullptr;
  const agents::ValueFunction* value = nullptr;
  const agents::PolicySnapshots* snapshots = nullptr;
};

// All three views of an agent that offers them (agents::Sac does).
template <class Agent>
BackboneViews every_view(const Agent& agent) {
  return {&agent, &agent, &agent};
}

// What an objective sees before a fit. The replay buffer's rows are in slot order
// (ReplayBuffer::all()); weights refer to that order.
struct FitContext {
  const data::ReplayBuffer& replay;
  BackboneViews views;
  std::int64_t env_steps;          // real env steps so far
  std::int64_t exploration_steps;  // the first env steps, which explored before any learning
  torch::Generator& gen;           // the backbone's generator (checkpointed with it)

  // The views, or a tom::Error naming the objective that needs the missing one (the
  // settings check refuses such a combination before a run starts; this guards C++ use).
  const agents::ActionSampler& policy(const char* objective) const;
  const agents::ValueFunction& value(const char* objective) const;
  const agents::PolicySnapshots& snapshots(const char* objective) const;
};

// The replay buffer's transitions in slot order, as a fit's data.
models::Transitions replay_transitions(const data::ReplayBuffer& replay);

struct FitPlan {
  // The transitions to fit: every replay transition once, in slot order. A batch loss's
  // indices are these rows' slots (also when the backbone fits a resample of them).
  models::Transitions data;
  // One per row of `data`, checked where the objective made them (data::Weights::checked).
  data::Weights fit_weights;    // how much each transition counts in the model fit
  data::Weights start_weights;  // how likely each transition's state starts a rollout
  models::BatchLoss loss;       // null: the model's likelihood
  double holdout_ratio = 0.0;   // > 0: the held-out fraction of this fit (else the model's setting)
  std::string epoch;            // non-empty: the minibatches of this fit's epochs (else the model's `epoch`)
  // False when the loss shapes only the predicted mean (the variances and, for the MDN,
  // the per-component parts get no gradient): rollouts then step with the mean.
  bool trains_distribution = true;
};

class ModelObjective {
 public:
  virtual ~ModelObjective() = default;
  virtual std::string name() const = 0;
  // Called once before every model fit.
  virtual FitPlan plan(const FitContext& context) = 0;
  // Objective-specific figures of the last plan() (e.g. discriminator accuracy), as
  // extra metrics.csv columns; the same names on every call.
  virtual void report(Figures& out) const { (void)out; }
  // State that must survive a resume (networks, optimisers, policy snapshots...).
  virtual void save(torch::serialize::OutputArchive& archive) const { (void)archive; }
  virtual void load(torch::serialize::InputArchive& archive) { (void)archive; }
};

// Optional parts of an objective: what only one baseline needs from a backbone's loop.
// An objective that needs one derives from it too; the stage looks for it once, so the
// interface above stays what every objective has.

// Hears of each burst of policy updates, with the replay buffer's insertion count at that
// moment (PMAC: the policy changed, so a new block of transitions starts).
class HearsPolicyUpdates {
 public:
  virtual ~HearsPolicyUpdates() = default;
  virtual void policy_updated(std::int64_t total_added) = 0;
};

// The probability that a policy update's batch in an epoch (counted from the end of
// exploration) mixes model data in; otherwise it holds only its real part (the TOM
// code's VaGraM runs: vagram.model_data_ramp_epochs). Without it the probability is 1.
class RampsModelData {
 public:
  virtual ~RampsModelData() = default;
  virtual double model_data_probability(std::int64_t epoch) const = 0;
};

// The weight diagnostics every objective gets after each plan: weights relative to their
// mean over the buffer (1 up to rounding), ages from insertion order.
struct WeightSummary {
  double newest_mean = 1.0;  // mean weight of the newest 1000 transitions (or all, if fewer)
  double oldest_mean = 1.0;  // mean weight of the oldest 1000
  double effective_sample_size = 0.0;  // (sum w)^2 / sum w^2, in transitions
  double max = 1.0;
  std::vector<double> age_bins;  // 100 bins from oldest to newest: mean weight in each

  template <class V>
  void visit(V& v) {  // the single figures (not the bins)
    v("weight_newest_mean", newest_mean);
    v("weight_oldest_mean", oldest_mean);
    v("weight_ess", effective_sample_size);
    v("weight_max", max);
  }
};

// weights: one per row of insertion_index ([N] int64, larger = newer).
WeightSummary summarise_weights(const data::Weights& weights, const torch::Tensor& insertion_index,
                                std::int64_t window = 1000, int bins = 100);

}  // namespace tom::objectives
