#pragma once
// PMAC / PDML (Wang et al. 2022, "Live in the moment"): weight replay transitions for the
// model fit by how close the policy that collected them is to the current policy.
//
// Blocks. With policy_change = fit, every plan() call is a policy change (a model fit
// follows it); with policy_change = update (the TOM authors' code), every burst of SAC
// updates is (policy_updated()). The transitions inserted between two changes form one
// block, collected under one policy snapshot,
// the policy at the earlier of the two calls. The data present at the first plan()
// (random exploration, no snapshot) is the first block; the tv form uses the first
// snapshot for it. Blocks are identified by insertion numbers (ReplayBuffer::total_added
// at each plan), so transitions evicted from the ring simply no longer appear.
//
//   geometric (the TOM paper's code): each policy change multiplies the mass of all older
//     transitions by `decay`; the newest block gets 1 - decay of the total and the first
//     block the remaining decay^(K-1) (K blocks). Within a block each transition gets
//     mass / (transitions inserted in the block), so its weight does not depend on how
//     many of its block-mates were evicted; the weights of the stored transitions are
//     then rescaled to mean 1. With one plan only the weights are uniform.
//   tv (the published form): a block's per-transition weight is 1 / TV(current policy,
//     block policy), TV clamped below at min_tv, estimated on the pre-tanh Gaussians (the
//     squashing is a bijection, so TV is unchanged) by Monte Carlo on tv_states states
//     drawn from the buffer. Then rescaled to mean 1.
//
// Memory: the tv form keeps one policy snapshot per block (plus the one in force now);
// beyond max_snapshots the two oldest blocks are merged. The geometric form keeps no
// snapshots, only block boundaries.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/core/settings.hpp"
#include "tom/objectives/model_objective.hpp"

namespace tom::objectives {

struct PmacSettings {
  std::string form = "geometric";
  std::string policy_change = "fit";
  double decay = 0.9;
  int tv_states = 1000;
  int tv_samples = 10;
  double min_tv = 0.01;
  int max_snapshots = 200;

  template <class V>
  void visit(V& v) {
    v("form", form,
      "geometric (each policy change scales older transitions' mass by decay; the TOM paper's code) or tv "
      "(weight 1/TV(current policy, collecting policy); the published form)",
      OneOf{"geometric", "tv"});
    v("policy_change", policy_change,
      "what starts a new block: fit (each model fit) or update (each burst of SAC updates, the TOM authors' code, "
      "geometric form only)",
      OneOf{"fit", "update"});
    v("decay", decay, "geometric: mass kept by older transitions at each policy change (newest block: 1 - decay)",
      Range{0.0, 1.0, true});
    v("tv_states", tv_states, "tv: buffer states on which the total variation is estimated", Range::at_least(1));
    v("tv_samples", tv_samples, "tv: Monte-Carlo action samples per state", Range::at_least(1));
    v("min_tv", min_tv, "tv: lower clamp of the total variation (bounds a block's weight at 1/min_tv)",
      Range{0.0, 1.0, true});
    v("max_snapshots", max_snapshots, "tv: policy snapshots kept; beyond it the two oldest blocks are merged",
      Range::at_least(2));
  }

  // Throws tom::Error naming the first setting out of range.
  void check();
};

// Monte-Carlo total variation between the current policy and each snapshot, per state
// of `states` [S, O], averaged over states: TV(p, q) = E_{u~p}[max(0, 1 - q(u)/p(u))] on
// the pre-tanh Gaussians, `samples` draws of u per state from `gen`. The same draws serve
// every snapshot (common random numbers: differences between blocks are less noisy).
// Returns one TV per snapshot (not clamped). No gradient.
std::vector<double> estimate_tv(const agents::PolicySnapshots& agent, const torch::Tensor& states,
                                const torch::Tensor& current, const std::vector<torch::Tensor>& snapshots,
                                int samples, torch::Generator& gen);

class PmacObjective final : public ModelObjective, public HearsPolicyUpdates {
 public:
  // Throws tom::Error on out-of-range settings.
  explicit PmacObjective(PmacSettings settings);

  std::string name() const override { return "pmac"; }
  // Records a block boundary (and, tv, a snapshot of the policy), then weights the
  // buffer. Throws tom::Error on an empty buffer, or when the buffer has fewer insertions
  // than at the previous plan() (the state does not belong to this buffer).
  FitPlan plan(const FitContext& context) override;
  // policy_change = update: closes the current block.
  void policy_updated(std::int64_t total_added) override;
  // geometric: pmac_blocks, pmac_newest_share (fraction of the total weight on the newest
  // block); tv: also pmac_tv_newest (the TV of the newest block's policy, before the
  // clamp) and pmac_tv_oldest.
  void report(Figures& out) const override;
  // Block boundaries, snapshots and counters: a loaded objective continues exactly.
  // load() throws tom::Error when the checkpoint is of another form or inconsistent.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // Inspection (tests, diagnostics). Blocks oldest first, as of the last plan().
  struct BlockView {
    std::int64_t begin, end;  // insertion numbers [begin, end)
    double tv;                // tv form: the estimated TV (unclamped); geometric: 0
    double weight;            // per-transition weight before the mean-1 rescaling
  };
  std::vector<BlockView> blocks() const;
  const PmacSettings& settings() const { return settings_; }

 private:
  struct Block {
    std::int64_t begin, end;  // insertion numbers [begin, end)
    torch::Tensor policy;     // tv: the snapshot in force while the block was collected
    double tv = 0.0, weight = 0.0;
  };
  void check_insertions(std::int64_t total) const;
  void record_block(const FitContext& context);
  void drop_evicted(std::int64_t oldest_insertion);
  void merge_oldest();
  void compute_block_weights(const FitContext& context);

  enum class Form { geometric, tv };
  enum class PolicyChange { fit, update };

  PmacSettings settings_;
  Form form_;                    // settings_.form, parsed once
  PolicyChange policy_change_;  // settings_.policy_change, parsed once
  std::vector<Block> blocks_;
  std::int64_t dropped_ = 0;  // blocks dropped because all their transitions were evicted
  torch::Tensor pending_;     // tv: the snapshot taken at the last plan() (policy of the next block)
  bool planned_ = false;
  double newest_share_ = 0.0;
};

}  // namespace tom::objectives
