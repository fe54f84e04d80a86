#pragma once
// PETS (Chua et al. 2018), top to bottom, one env step at a time:
//   1. the first random_steps env steps explore with uniformly random actions;
//   2. at the end of each episode after that (or every train_every env steps), the
//      model-learning stage (model_learning/stage.hpp) fits the probabilistic ensemble by
//      its objective;
//   3. every env step after the first fit acts by model-predictive control: the CEM
//      planner (agents/cem_planner.hpp) scores candidate action sequences on particles
//      propagated through the model (propagation: ts-inf keeps each particle on one elite,
//      ts1 draws an elite per step, expectation steps the elites' mean) and executes the
//      first action of its plan.
// There is no actor and no critic. For objectives that need a policy (TOM's a ~ pi(.|s'),
// PMAC's snapshots), a policy distilled from the planner's latest executed actions
// (agents/distilled_policy.hpp) is refitted before each model fit and stands for the
// planner; no value function exists, so VaGraM is refused (runs/backbone_registry.cpp).
#include <cstdint>
#include <memory>
#include <string>

#include "tom/agents/cem_planner.hpp"
#include "tom/agents/distilled_policy.hpp"
#include "tom/backbones/collector.hpp"
#include "tom/backbones/trainer.hpp"
#include "tom/core/settings.hpp"
#include "tom/core/termination_fn.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/envs/env.hpp"
#include "tom/model_learning/stage.hpp"

namespace tom::backbones {

struct PetsSettings {
  std::string model = "ensemble";
  std::int64_t random_steps = 1000;
  std::int64_t train_every = 0;
  std::string propagation = "ts-inf";
  std::string fit_data = "buffer";
  std::int64_t replay_capacity = 1000000;

  template <class V>
  void visit(V& v) {
    v("model", model, "dynamics model: ensemble (PETS's probabilistic ensemble) or mdn", OneOf{"ensemble", "mdn"});
    v("random_steps", random_steps, "env steps of uniformly random actions before the first model fit",
      Range::at_least(1));
    v("train_every", train_every, "env steps between model fits; 0: at the end of every episode",
      Range::at_least(0));
    v("propagation", propagation,
      "how planning particles use the model: ts-inf (each particle keeps one elite for the horizon), ts1 (a random "
      "elite per step) or expectation (the elites' mean)",
      OneOf{"ts-inf", "ts1", "expectation"});
    v("fit_data", fit_data, "what each model fit trains on: buffer or bootstrap (a resample with replacement)",
      OneOf{"buffer", "bootstrap"});
    v("replay_capacity", replay_capacity, "real transitions kept", Range::at_least(1));
  }
};

class PetsTrainer final : public Trainer {
 public:
  PetsTrainer(const PetsSettings& pets, const agents::CemSettings& cem, const agents::DistillSettings& distill,
              std::unique_ptr<model_learning::Stage> learning, std::unique_ptr<envs::Env> env,
              TerminationFn is_terminal, std::uint64_t seed, torch::Device device);

  void step() override;
  std::int64_t env_steps() const override { return env_steps_; }
  // Plans with a planner of its own, so evaluating leaves training's plan untouched.
  std::vector<double> act_deterministic(std::span<const double> obs) override;
  void report(Figures& out) const override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  model_learning::Stage* model_learning() override { return learning_.get(); }

 private:
  enum class Propagation { ts_inf, ts1, expectation };
  bool fit_due(bool episode_ended) const;
  void fit_model();
  std::vector<double> plan(agents::CemPlanner& planner, std::span<const double> obs);

  PetsSettings settings_;
  Propagation propagation_;
  Collector collector_;
  data::ReplayBuffer replay_;
  std::unique_ptr<model_learning::Stage> learning_;
  TerminationFn is_terminal_;
  agents::CemPlanner planner_, eval_planner_;
  agents::DistilledPolicy distilled_;
  bool distills_;  // the objective needs a policy: distil one before each fit
  agents::DistillFigures last_distill_;
  torch::Generator gen_;  // the stage's draws
  std::int64_t env_steps_ = 0;
  bool fit_pending_ = false;  // a fit is due before the next action
  struct Counters {
    double env_s = 0, plan_s = 0, distill_s = 0, planned_return = 0;
    template <class V>
    void visit(V& v) {
      v("time_env_s", env_s);
      v("time_plan_s", plan_s);
      v("time_distill_s", distill_s);
      v("plan_elite_return", planned_return);
    }
  } counters_;
};

}  // namespace tom::backbones
