#pragma once
// TOM's occupancy-ratio estimator: the DICE-style dual program whose solution gives the
// weight of a replay transition, w(s,a,s') = d^pi(s,a,s') / d^R(s,a,s').
//
// A dual network Q(s,a) minimises
//     (1 - gamma) E_{s0, a0~pi}[Q(s0,a0)] + E_R[f*(e)],   e = r + gamma (1-done) Q(s',pi) - Q(s,a),
// over replay transitions; at the optimum the ratio is f*'(e). The optimum does not
// depend on r when the Bellman flow pins the occupancy down (r is the discriminator's
// log-ratio in TOM, which only makes e small). The minimax form instead plays Q against a
// ratio network w(s,a) >= 0 on the Lagrangian (1-gamma) E[Q(s0,pi)] + E_R[w e - f(w)].
// Everything arrives as tensors and
// callables, so the estimator runs unchanged on MuJoCo buffers and on one-hot finite MDPs.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/core/settings.hpp"
#include "tom/nn/flat_mlp.hpp"
#include "tom/objectives/divergence.hpp"

namespace tom {
class PairedWork;
class WorkerThread;
}

namespace tom::objectives {

struct TomDualSettings {
  std::string divergence = "chi2";
  std::string form = "conjugate";
  int next_actions = 1;
  int steps = 1000;
  std::string schedule = "fixed";
  int check_every = 250;
  int probe_rows = 2048;
  int patience = 3;
  double anneal_factor = 0.02;
  int batch = 256;
  double lr = 3e-4;
  std::string bias_rate = "shared";
  double l2 = 1e-4;
  double gamma = 0.99;
  double ema = 0.995;
  double clip_max = 20.0;
  int hidden = 256;
  int layers = 2;
  std::string init = "torch";

  template <class V>
  void visit(V& v) {
    v("divergence", divergence, "f-divergence of the dual: chi2 or kl", OneOf{"chi2", "kl"});
    v("form", form,
      "conjugate (next value inside f*), conjugate-u (a regressed U(s,a) inside f*', unbiased "
      "for stochastic transitions) or minimax (Q against a ratio network w(s,a), gradient "
      "descent-ascent on the Lagrangian)",
      OneOf{"conjugate", "conjugate-u", "minimax"});
    v("next_actions", next_actions, "next actions a'~pi(s') sampled per transition (K)",
      Range::at_least(1));
    v("steps", steps, "dual gradient steps per fit (the most, under the converge schedule)", Range::at_least(0));
    v("schedule", schedule,
      "fixed (`steps` steps at the constant rate) or converge (the constant rate until the weights stop "
      "settling, then the rate annealed to anneal_factor over as many steps again, within `steps`)",
      OneOf{"fixed", "converge"});
    v("check_every", check_every, "dual steps between checks of the weights' change (diagnostics and schedule)",
      Range::at_least(1));
    v("probe_rows", probe_rows, "replay transitions whose weights the checks compare", Range::at_least(1));
    v("patience", patience, "checks without a 20% smaller weight change before the converge schedule anneals",
      Range::at_least(1));
    v("anneal_factor", anneal_factor, "the converge schedule's final learning rate, as a fraction of lr",
      Range{1e-6, 1.0});
    v("batch", batch, "replay transitions (and initial states) per dual step", Range::at_least(1));
    v("lr", lr, "Adam learning rate of the dual networks", Range::positive());
    v("bias_rate", bias_rate,
      "learning rate of the conjugate form's Q output bias: shared (lr, the authors' code) or scaled (lr / (1 - "
      "gamma): a constant shift of Q moves every residual by only 1 - gamma times as much, so at the shared "
      "rate the weights' mean is slow to settle); conjugate-u always scales it",
      OneOf{"shared", "scaled"});
    v("l2", l2, "L2 penalty (Adam weight decay) on the dual networks' weights", Range::at_least(0));
    v("gamma", gamma, "discount of the occupancies", Range::between(0.0, 0.9999));
    v("ema", ema, "Polyak averaging factor of the copy used for weights (0 = no averaging)",
      Range{0.0, 1.0});
    v("clip_max", clip_max, "upper clip of a transition weight", Range::positive());
    v("hidden", hidden, "hidden units per layer of the dual networks", Range::at_least(1));
    v("layers", layers, "hidden ReLU layers of the dual networks", Range::at_least(1));
    v("init", init,
      "initialisation of the dual networks: torch (PyTorch's nn.Linear) or xavier (Xavier-uniform weights, zero "
      "biases: the TOM authors' Q network); the free output bias starts at 0 either way",
      OneOf{"torch", "xavier"});
  }

  // Throws tom::Error naming the first setting out of range.
  void check();
};

// Next actions a'_k ~ pi(s) for a batch of states: `actions` [K, B, A] and optional
// per-sample probabilities `probs` [K, B] (undefined = uniform 1/K). Giving every action
// of a finite set with its pi probability makes the next value an exact expectation.
struct NextActions {
  torch::Tensor actions;
  torch::Tensor probs;
};

// One batch of replay transitions: s [B,S], a [B,A], r [B], s_next [B,S], done [B].
struct ReplayBatch {
  torch::Tensor s, a, r, s_next, done;
};

// Where the dual's data comes from; all three are called once per dual step.
struct DualData {
  std::function<torch::Tensor(std::int64_t count)> sample_initial_states;  // [count, S]
  std::function<ReplayBatch(std::int64_t count)> sample_replay;
  std::function<NextActions(const torch::Tensor& states, std::int64_t k)> sample_next_actions;
};

// Q(s,a), U(s,a) or the ratio w(s,a): an MLP on [s, a] with ReLU hidden layers and a free
// output bias (no weight decay on it: the dual's constant direction has a gradient scaled
// by 1-gamma and must not be pulled to zero).
class DualNetImpl : public torch::nn::Module {
 public:
  // Layers start as `init` says, drawn from LibTorch's global generator.
  DualNetImpl(std::int64_t input_dim, int hidden, int layers, nn::Init init = nn::Init::torch_default);
  torch::Tensor forward(const torch::Tensor& x);  // [n, input_dim] -> [n]
  const torch::Tensor& output_bias() const { return output_bias_; }

  // The layers' weights and biases, the output bias as the last layer's: what forward()
  // runs, and what an nn::FlatMlpTape of sizes() runs by hand.
  nn::MlpLayers layers() const;
  const std::vector<std::int64_t>& sizes() const { return sizes_; }  // {input_dim, hidden..., 1}

 private:
  std::vector<std::int64_t> sizes_;
  std::vector<torch::nn::Linear> layers_;
  torch::Tensor output_bias_;
};
TORCH_MODULE(DualNet);

// How a call of TomDual::train went, from checks of the averaged networks' weights on a
// fixed probe batch of replay transitions every `check_every` steps.
struct DualTrainReport {
  int steps = 0;
  double loss = 0.0;           // mean dual loss over the last check interval
  double loss_trend = 0.0;     // that mean less the previous interval's (< 0: still descending)
  double weight_change = 0.0;  // mean |w - w_previous check| / mean w on the probe, at the last check
  // Mean raw (unclipped) probe weight. At the optimum it is the current
  // policy's total discounted occupancy, E[1 - gamma^T]: 1 without terminations, below 1
  // with them (about 0.3-0.45 early in a hopper run).
  double weight_mean = 0.0;
};

class DualForm;
struct StepSample;

class TomDual {
 public:
  TomDual(TomDualSettings settings, std::int64_t state_dim, std::int64_t action_dim,
          torch::Device device = torch::kCPU);
  TomDual(TomDual&&) noexcept;
  TomDual& operator=(TomDual&&) noexcept;
  ~TomDual();

  // Runs dual steps under the settings' schedule, at most `max_steps` of them. Throws
  // tom::Error when the dual diverged: a non-finite loss or weight, or raw weights whose
  // mean is outside [1e-3, 1e3] at a check (the optimum's is at most 1; kl conjugate weights are
  // only checked for finiteness, their scale being free).
  DualTrainReport train(const DualData& data, int max_steps);

  // One dual step (with one U step for conjugate-u, one w ascent step for minimax); returns
  // its loss (for minimax the Lagrangian's value).
  double step(const DualData& data);

  // Weights of a whole buffer from the averaged networks: s [N,S], a [N,A], r [N],
  // s_next [N,S], done [N], next actions for s_next ([K,N,A], probs [K,N] or undefined;
  // read only when needs_next_actions()). conjugate: f*'(e); conjugate-u: f*'(U - Q);
  // minimax: w(s,a). Clipped at clip_max unless `clip` is false. Chunked, no gradient.
  // Returns [N] float.
  torch::Tensor weights(const torch::Tensor& s, const torch::Tensor& a, const torch::Tensor& r,
                        const torch::Tensor& s_next, const torch::Tensor& done,
                        const NextActions& next, bool clip = true) const;

  // Only the conjugate form evaluates Q at next actions to weigh a buffer.
  bool needs_next_actions() const;

  const TomDualSettings& settings() const { return settings_; }
  const Divergence& divergence() const;  // settings().divergence as an object
  std::int64_t steps_done() const { return steps_done_; }

  // Networks (online and averaged), optimiser states and the step count; load throws
  // tom::Error when the stored dual has another shape or form.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  void check_batch(const ReplayBatch& batch, std::int64_t count) const;
  // The form's values (dual residuals or raw ratios) of a checked buffer, chunk by chunk.
  torch::Tensor buffer_values(const torch::Tensor& s, const torch::Tensor& a,
                              const torch::Tensor& r, const torch::Tensor& s_next,
                              const torch::Tensor& done, const torch::Tensor& next_actions,
                              const torch::Tensor& probs) const;
  torch::Tensor check_next(const NextActions& next, std::int64_t rows,
                           const char* where) const;  // returns probs [K, rows]
  StepSample draw(const DualData& data) const;  // one step's checked samples
  // Draws train()'s probe batch (and its next actions) and returns what computes its
  // raw weights from the networks as they are then.
  std::function<torch::Tensor()> probe_weights(const DualData& data) const;
  // One step on them, `alongside` at the same time on `pair`; returns its loss.
  double descend(const StepSample& sample, PairedWork& pair, const std::function<void()>& alongside);
  void set_lr_factor(double factor);  // every optimiser's rate = factor x its base rate

  TomDualSettings settings_;
  std::int64_t state_dim_, action_dim_;
  std::unique_ptr<DualForm> form_;  // its networks, steps and weights
  std::int64_t steps_done_ = 0;
  bool on_cpu_;
  std::unique_ptr<WorkerThread> worker_;  // draws the next step's samples, with 2+ threads
};

}  // namespace tom::objectives
