#pragma once
// Soft Actor-Critic (Haarnoja et al. 2018, with automatic entropy tuning): twin critics
// with Polyak-averaged targets, a tanh-squashed Gaussian policy, and a learned
// temperature alpha.
//
// update() runs a hand-written forward/backward pass over preallocated buffers (see
// nn/flat_mlp.hpp): the target is computed without any gradient, the critic step
// computes critic weight gradients only, and the policy step backpropagates through
// the critics to their action input without forming critic weight gradients.
//
// With 2 or more LibTorch threads (tom::set_threads), update() runs independent work in
// pairs on 2 threads, the second on a worker thread (tom::WorkerThread): the two critics,
// the two policy samples, and the policy's backward pass over two halves of the batch
// (halves in every mode). Every op runs single-threaded: each computation is the same as
// with 1 thread, only where it runs differs, so the results are bit-identical.
//
// Randomness (initial weights, action noise) comes from a generator owned by the agent
// and saved in checkpoints, so a resumed run continues identically (with 1 thread).
// On devices other than the CPU, noise is drawn on the CPU and copied over.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/agents/policy_value.hpp"
#include "tom/core/settings.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/nn/adam.hpp"
#include "tom/nn/flat_mlp.hpp"

namespace tom {
class WorkerThread;
}

namespace tom::agents {

struct SacSettings {
  int hidden_size = 256;
  int hidden_layers = 2;
  double actor_lr = 3e-4;
  double critic_lr = 3e-4;
  double alpha_lr = 3e-4;
  double gamma = 0.99;
  double tau = 0.005;
  int batch_size = 256;
  bool learn_alpha = true;
  double init_alpha = 1.0;
  bool auto_target_entropy = true;  // target entropy -|A|; else target_entropy
  double target_entropy = -1.0;
  double critic_loss_clamp = 0.0;
  std::string init = "torch";
  std::string entropy_units = "unit";

  template <class V>
  void visit(V& v) {
    v("hidden_size", hidden_size, "units per hidden layer of the policy and critics", Range::at_least(1));
    v("hidden_layers", hidden_layers, "hidden layers of the policy and critics", Range::at_least(1));
    v("actor_lr", actor_lr, "Adam learning rate of the policy", Range::positive());
    v("critic_lr", critic_lr, "Adam learning rate of the critics", Range::positive());
    v("alpha_lr", alpha_lr, "Adam learning rate of log(alpha)", Range::positive());
    v("gamma", gamma, "discount factor", Range::between(0.0, 1.0));
    v("tau", tau, "Polyak averaging rate of the target critics", Range::between(0.0, 1.0));
    v("batch_size", batch_size, "transitions per update", Range::at_least(1));
    v("learn_alpha", learn_alpha, "tune the entropy temperature alpha automatically");
    v("init_alpha", init_alpha, "initial (or, without learn_alpha, fixed) temperature", Range::positive());
    v("auto_target_entropy", auto_target_entropy, "use -|A| as the target entropy");
    v("target_entropy", target_entropy, "target entropy when auto_target_entropy is false", Range::any());
    v("entropy_units", entropy_units,
      "what log pi and the target entropy measure: unit (the tanh-squashed action in [-1, 1], as softlearning "
      "in MBPO's code) or action (the action in the task's units, log pi less sum log((high - low) / 2), as the "
      "TOM authors' SAC); on a task with bounds +-0.4 a target of -17 means -17 nats of the action, which is "
      "-1.42 nats of the unit action",
      OneOf{"unit", "action"});
    v("init", init,
      "initialisation of the policy and critics: torch (uniform +-1/sqrt(fan_in), PyTorch's nn.Linear) or "
      "xavier (Xavier-uniform weights, zero biases: the TOM authors' SAC and softlearning's Keras layers)",
      OneOf{"torch", "xavier"});
    v("critic_loss_clamp", critic_loss_clamp,
      "a critic whose mean squared TD error exceeds this gets no gradient in that update, as with PyTorch's "
      "clamp_max on the loss (the TOM authors' code: 1000); 0: off",
      Range::at_least(0));
  }
};

struct SacStats {
  double q_loss = 0;       // sum of both critics' mean squared TD errors
  double policy_loss = 0;  // mean of alpha * log_prob - min(Q1, Q2)
  double alpha = 0;        // temperature used in this update
  double alpha_loss = 0;   // -log(alpha) * (mean log_prob + target entropy); 0 without learn_alpha
  double entropy = 0;      // -mean log_prob of the policy's actions (in sac.entropy_units)

  template <class V>
  void visit(V& v) {
    v("q_loss", q_loss);
    v("policy_loss", policy_loss);
    v("alpha", alpha);
    v("alpha_loss", alpha_loss);
    v("entropy", entropy);
  }
};

class Sac final : public ActionSampler, public ValueFunction, public PolicySnapshots {
 public:
  // low/high: the env's action bounds (action_dim entries, low < high, finite); the
  // policy's tanh output in [-1, 1] maps linearly onto them.
  Sac(const SacSettings& settings, int obs_dim, int action_dim, std::vector<double> low, std::vector<double> high,
      torch::Device device = torch::kCPU, std::uint64_t seed = 0);
  ~Sac() override;
  Sac(const Sac&) = delete;
  Sac& operator=(const Sac&) = delete;

  // Actions in env units for obs [B, O] -> [B, A]: the squashed mean when deterministic,
  // else a sample (for data collection). No gradient.
  torch::Tensor act(const torch::Tensor& obs, bool deterministic);
  // The same for one observation, without tensor allocation (called every env step).
  std::vector<double> act(std::span<const double> obs, bool deterministic);

  // One gradient step of critics, policy and temperature on `batch` (actions in env
  // units), then the Polyak update of the targets. Throws tom::Error if the losses
  // become NaN/inf.
  SacStats update(const data::Batch& batch);

  // The views model learning uses (policy_value.hpp): SAC offers all three.
  int obs_dim() const override { return obs_dim_; }
  int action_dim() const override { return action_dim_; }
  ActionSample sample_actions(const torch::Tensor& obs, torch::Generator& gen) const override;
  torch::Tensor mean_actions(const torch::Tensor& obs) const override;
  TwinQ q_values(const torch::Tensor& obs, const torch::Tensor& action) const override;
  TwinQ target_q_values(const torch::Tensor& obs, const torch::Tensor& action) const override;
  torch::Tensor policy_parameters() const override;
  GaussianHead policy_gaussian(const torch::Tensor& obs, const torch::Tensor& parameters) const override;
  double alpha() const;  // current entropy temperature
  double gamma() const { return settings_.gamma; }

  const SacSettings& settings() const { return settings_; }
  // In the units of settings().entropy_units.
  double target_entropy() const { return target_entropy_; }
  // What a log-probability of the unit-squashed action gains in entropy_units: 0 for unit,
  // -sum log((high - low) / 2) for action (the density of the action in the task's units).
  double log_prob_shift() const { return log_prob_shift_; }
  torch::Generator& generator() { return gen_; }
  // The networks (parameters are flat tensors; see nn::FlatMlp).
  const nn::FlatMlp& policy() const { return policy_; }
  const nn::FlatMlp& critic(int index) const { return index == 0 ? critic1_ : critic2_; }
  const nn::FlatMlp& target_critic(int index) const { return index == 0 ? target1_ : target2_; }

  // Networks, targets, optimiser states, log(alpha), update count and generator state.
  // Use one nested archive per agent. load() throws tom::Error naming what differs
  // (dimensions, network shape, action bounds) or what is missing.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  struct Workspace;   // buffers for update() at one batch size
  struct UpdateStep;  // one update()'s state and its steps
  torch::Tensor normalise_action(const torch::Tensor& action) const;
  torch::Tensor critic_input(const torch::Tensor& obs, const torch::Tensor& action) const;

  SacSettings settings_;
  int obs_dim_, action_dim_;
  torch::Device device_;
  std::vector<double> low_, high_;
  torch::Tensor action_scale_, action_offset_;  // [A] on device: action = offset + scale * tanh(u)
  double target_entropy_;
  double log_prob_shift_;
  torch::Generator gen_;
  nn::FlatMlp policy_, critic1_, critic2_, target1_, target2_;
  nn::FlatAdam policy_adam_, critic1_adam_, critic2_adam_, alpha_adam_;
  torch::Tensor log_alpha_;  // [1] on device
  std::int64_t updates_ = 0;
  std::unique_ptr<Workspace> workspace_;
  std::unique_ptr<WorkerThread> worker_;  // started by the first update() with 2+ threads
  // Single-observation path of act().
  torch::Tensor single_obs_, single_noise_;
  std::unique_ptr<nn::FlatMlpTape> single_tape_;
};

}  // namespace tom::agents
