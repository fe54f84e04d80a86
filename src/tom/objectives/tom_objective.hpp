#pragma once
// TOM, Transition Occupancy Matching (Ma et al., L4DC 2023), as a model-learning
// objective. Before each fit:
//   1. the recent pool: the newest `recent_pool` real transitions, taken as samples of
//      the current policy's transition occupancy;
//   2. a log-ratio reward r(s,a,s'): the logit of a discriminator trained to tell the
//      pool from the whole buffer (discriminator.hpp), or, without it, r = 1 inside the
//      pool and 0 outside;
//   3. the dual program (tom_dual.hpp) trained on replay batches and the initial states
//      of real episodes, next actions from the current policy;
//   4. weights w = f*'(e) of every replay transition from the dual's averaged networks,
//      clipped (rescaled to mean 1 where the stage takes them, as data::Weights), for the
//      fit; the rollout starts take either the same weights or (start_weights = fresh, the
//      authors' code) unclipped weights recomputed with fresh next actions.
// With wait_for_recent_pool (the authors' code), fits before `recent_pool` transitions
// have been collected after exploration are plain maximum likelihood; their rollout starts
// are uniform, or (starts_while_waiting = dual, the authors' code) weighted by the dual and
// discriminator as they are then: untrained, before the first TOM fit.
// The discriminator is re-created at every fit (the paper's code) unless configured
// otherwise; the dual networks carry over from fit to fit unless warm_start is off.
#include <memory>
#include <string>

#include "tom/objectives/discriminator.hpp"
#include "tom/objectives/model_objective.hpp"
#include "tom/objectives/tom_dual.hpp"

namespace tom::objectives {

struct TomSettings {
  std::int64_t recent_pool = 1000;
  bool wait_for_recent_pool = false;
  double holdout_ratio = 0.0;
  std::string start_weights = "fit";
  std::string starts_while_waiting = "uniform";
  bool warm_start = true;
  int reference_steps = 0;

  template <class V>
  void visit(V& v) {
    v("recent_pool", recent_pool, "newest real transitions taken as the current policy's samples",
      Range::at_least(1));
    v("wait_for_recent_pool", wait_for_recent_pool,
      "fit by plain maximum likelihood until recent_pool transitions were collected after exploration");
    v("holdout_ratio", holdout_ratio, "held-out fraction of TOM's model fits (0: the model's setting)",
      Range::between(0.0, 0.5));
    v("start_weights", start_weights,
      "rollout starts: fit (the fit's clipped weights) or fresh (unclipped, recomputed with fresh next actions)",
      OneOf{"fit", "fresh"});
    v("starts_while_waiting", starts_while_waiting,
      "rollout starts of the plain-likelihood fits before the recent pool fills (wait_for_recent_pool): uniform, "
      "or dual (unclipped weights of the dual and discriminator as they are, untrained before the first TOM fit: "
      "the authors' code)",
      OneOf{"uniform", "dual"});
    v("warm_start", warm_start,
      "the dual networks and their optimiser carry over from fit to fit (the authors' code); false: a fresh "
      "dual at every fit");
    v("reference_steps", reference_steps,
      "diagnostic, 0 = off: at each fit a copy of the dual trains up to this many more steps under the "
      "converge schedule, and metrics.csv gets the weighted L1 between its weights and the fit's",
      Range::at_least(0));
  }
};

class TomObjective final : public ModelObjective {
 public:
  TomObjective(const TomSettings& settings, const TomDualSettings& dual, const DiscriminatorSettings& discriminator,
               int obs_dim, int action_dim, torch::Device device = torch::kCPU);
  std::string name() const override { return "tom"; }
  FitPlan plan(const FitContext& context) override;
  void report(Figures& out) const override { out.add(last_); }
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  // The weighted L1 between the fit's weights and those of a copy of the dual trained
  // reference_steps further on fresh draws; sets last_.reference_*.
  // The log-ratio reward r(s,a,s') of every replay transition: the discriminator's logit
  // (fitted first when `fit`), or without one 1 inside the recent pool and 0 outside.
  torch::Tensor log_ratio_reward(const Transitions& buffer, const torch::Tensor& newest, bool fit,
                                 torch::Generator& gen);
  void measure_reference_gap(const DualData& fit_data, const torch::Tensor& s, const torch::Tensor& a,
                             const torch::Tensor& reward, const torch::Tensor& s_next, const torch::Tensor& done,
                             const NextActions& next);

  TomSettings settings_;
  int obs_dim_, action_dim_;
  torch::Device device_;
  Discriminator discriminator_;
  TomDual dual_;
  std::int64_t plans_ = 0;
  // The last plan's figures: metrics.csv columns and checkpoint entries alike.
  struct PlanFigures {
    double discriminator_loss = 0, discriminator_accuracy = 0, reward_mean = 0;
    DualTrainReport dual;
    double reference_gap = 0;
    int reference_steps = 0;
    template <class V>
    void visit(V& v) {
      v("tom_discriminator_loss", discriminator_loss);
      v("tom_discriminator_accuracy", discriminator_accuracy);
      v("tom_reward_mean", reward_mean);
      v("tom_dual_loss", dual.loss);
      v("tom_dual_loss_trend", dual.loss_trend);
      v("tom_dual_steps", dual.steps);
      v("tom_dual_weight_change", dual.weight_change);
      v("tom_dual_weight_mean", dual.weight_mean);
      v("tom_reference_gap", reference_gap);
      v("tom_reference_steps", reference_steps);
    }
  } last_;
};

}  // namespace tom::objectives
