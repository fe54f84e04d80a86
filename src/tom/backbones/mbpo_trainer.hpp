#pragma once
// MBPO (Janner et al. 2019), top to bottom, one env step at a time:
//   1. the first random_steps env steps explore: uniformly random actions, or (exploration
//      = policy, the TOM authors' code) the initial, untrained policy;
//   2. every model_train_freq env steps after that (step()):
//        fit:      the model-learning stage (model_learning/stage.hpp) fits the dynamics
//                  model by its objective (MLE, TOM, PMAC, VaGraM), which sees SAC's policy
//                  and critics, and gives the rollout starts' weights;
//        roll out: the current policy in the model from rollout_batch_size replay states
//                  (drawn by the start weights) for rollout_length steps (a per-epoch
//                  schedule), cut by the task's termination rule, into the model buffer,
//                  which keeps model_retain_epochs epochs of rollouts (resized when the
//                  length grows);
//   3. each env step: a burst of updates_per_step SAC updates on batches with real_ratio
//      real and the rest model data, whenever this epoch's updates so far are within
//      max_updates_per_step per env step (MBPO's max_train_repeat_per_timestep: with 20
//      and 5, 20 updates on every 4th step); the objective hears of each burst.
#include <cstdint>
#include <memory>
#include <string>

#include "tom/agents/sac.hpp"
#include "tom/backbones/off_policy_core.hpp"
#include "tom/backbones/trainer.hpp"
#include "tom/core/settings.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/envs/env.hpp"
#include "tom/model_learning/stage.hpp"

namespace tom::backbones {

struct MbpoSettings {
  std::string model = "ensemble";
  std::string exploration = "uniform";
  std::string fit_data = "buffer";
  std::int64_t epoch_length = 1000;
  std::int64_t random_steps = 5000;
  std::int64_t model_train_freq = 250;
  std::int64_t rollout_batch_size = 100000;
  int rollout_min_length = 1;
  int rollout_max_length = 1;
  int rollout_min_epoch = 20;
  int rollout_max_epoch = 100;
  int model_retain_epochs = 1;
  int updates_per_step = 20;
  double max_updates_per_step = 5;
  double real_ratio = 0.05;
  std::int64_t replay_capacity = 1000000;
  double max_nonfinite_fraction = 0.01;
  std::string time_limit_ends = "bootstrap";

  template <class V>
  void visit(V& v) {
    v("model", model, "dynamics model: ensemble (MBPO) or mdn (TOM paper code)", OneOf{"ensemble", "mdn"});
    v("exploration", exploration,
      "actions of the first random_steps env steps: uniform (random) or policy (the initial, untrained policy, as "
      "the TOM authors' code)",
      OneOf{"uniform", "policy"});
    v("fit_data", fit_data,
      "what each model fit trains on: buffer (every replay transition once) or bootstrap (a resample of the "
      "buffer with replacement, as the TOM authors' code)",
      OneOf{"buffer", "bootstrap"});
    v("epoch_length", epoch_length, "env steps per epoch (the rollout schedule and update cap count epochs)",
      Range::at_least(1));
    v("random_steps", random_steps, "env steps of exploration before the first model fit",
      Range::at_least(1));
    v("model_train_freq", model_train_freq, "env steps between model fits (and rollouts)", Range::at_least(1));
    v("rollout_batch_size", rollout_batch_size, "model rollouts started per fit", Range::at_least(1));
    v("rollout_min_length", rollout_min_length, "rollout length up to rollout_min_epoch", Range::at_least(1));
    v("rollout_max_length", rollout_max_length, "rollout length from rollout_max_epoch on", Range::at_least(1));
    v("rollout_min_epoch", rollout_min_epoch,
      "epoch (counted from the end of exploration) at which the length starts growing", Range::at_least(0));
    v("rollout_max_epoch", rollout_max_epoch, "epoch at which the length reaches its maximum", Range::at_least(0));
    v("model_retain_epochs", model_retain_epochs, "epochs of rollouts kept in the model buffer", Range::at_least(1));
    v("updates_per_step", updates_per_step, "SAC updates per env step (MBPO's n_train_repeat)", Range::at_least(1));
    v("max_updates_per_step", max_updates_per_step,
      "cap on an epoch's SAC updates per env step so far (MBPO's max_train_repeat_per_timestep; 0: no cap)",
      Range::at_least(0));
    v("real_ratio", real_ratio, "fraction of real transitions in each SAC batch", Range::probability());
    v("replay_capacity", replay_capacity, "real transitions kept", Range::at_least(1));
    v("max_nonfinite_fraction", max_nonfinite_fraction,
      "stop the run when more model predictions than this are NaN/inf (the model diverged)", Range::probability());
    v("time_limit_ends", time_limit_ends,
      "a real episode's time-limit end in the replay buffer: bootstrap (not terminal, so SAC's targets and the "
      "TOM dual's flow go on past it) or terminal (done, as gym's v2 TimeLimit wrapper in the TOM authors' loop "
      "on hopper, walker2d and halfcheetah)",
      OneOf{"bootstrap", "terminal"});
  }
};

// MBPO's update schedule: whether a burst of updates runs at env step `epoch_step`
// (0-based within the epoch) after `epoch_updates` updates so far this epoch; a cap of 0
// means every step.
bool update_burst_due(std::int64_t epoch_updates, std::int64_t epoch_step, double max_updates_per_step);

class MbpoTrainer final : public Trainer {
 public:
  // learning: the stage with the model and objective (its fit_data from mbpo.fit_data).
  MbpoTrainer(const MbpoSettings& mbpo, const agents::SacSettings& sac, std::unique_ptr<model_learning::Stage> learning,
              std::unique_ptr<envs::Env> env, TerminationFn is_terminal, std::uint64_t seed, torch::Device device);

  void step() override;
  std::int64_t env_steps() const override { return core_.env_steps(); }
  std::vector<double> act_deterministic(std::span<const double> obs) override {
    return core_.act_deterministic(obs);
  }
  void report(Figures& out) const override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  model_learning::Stage* model_learning() override { return learning_.get(); }

  int rollout_length() const;

 private:
  bool model_fit_due() const;
  void resize_model_buffer();
  void roll_out(const model_learning::Fitted& fitted);
  void update_agent();
  std::int64_t model_buffer_capacity() const;

  MbpoSettings settings_;
  bool explore_uniformly_;  // settings_.exploration == "uniform"
  torch::Device device_;
  OffPolicyCore core_;
  std::unique_ptr<data::ReplayBuffer> model_buffer_;  // re-created when the rollout length grows
  std::unique_ptr<model_learning::Stage> learning_;
  TerminationFn is_terminal_;
  torch::Generator gen_;  // rollout starts, policy noise in rollouts, batch sampling, the stage's draws

  std::int64_t epoch_updates_ = 0;  // SAC updates in the current epoch
  struct Counters {
    double model_transitions = 0, nonfinite_predictions = 0;
    double env_s = 0, sac_s = 0, rollout_s = 0;  // seconds per phase
    template <class V>
    void visit(V& v) {
      v("model_transitions", model_transitions);
      v("nonfinite_predictions", nonfinite_predictions);
      v("time_env_s", env_s);
      v("time_sac_s", sac_s);
      v("time_rollout_s", rollout_s);
    }
  } counters_;
};

}  // namespace tom::backbones
