#pragma once
// Model-predictive control by the cross-entropy method (PETS: Chua et al. 2018; the
// defaults are mbrl-lib's). Each act():
//
//   1. start from the previous plan shifted by one step (the new last step at the middle
//      of the action bounds), with the initial spread ((high - low) / 4)^2;
//   2. iterations times: draw `population` action sequences of `horizon` steps from the
//      per-step Gaussians, truncated at two standard deviations and kept inside the
//      bounds; score each by the mean over `particles` propagated trajectories of the
//      summed predicted reward (a particle's reward ends when the task's rule says it
//      terminated); refit mean and variance to the `elites` best, mixed with the previous
//      ones by `momentum`;
//   3. execute the first action of the final mean (mbrl-lib's return_mean_elites: the best
//      single sequence is a noisier choice).
//
// method = icem (Pinneri et al. 2020, with mbrl-lib's defaults for its three additions)
// changes step 2: the noise is coloured along the horizon (power spectrum 1/f^exponent,
// so neighbouring steps' actions move together), sequences are clipped to the bounds
// instead of truncated, the population shrinks by population_decay per iteration (never
// below twice the elites), and the best keep_elites fraction of the elites is scored
// again in the next iteration (and, shifted one step, in the first iteration of the next
// env step).
//
// Particles are propagated in blocks (TS-inf): the rows of a step come in `blocks` equal
// consecutive blocks, block b always stepped by the model's predictor b (an ensemble's
// elite), so each particle keeps its predictor for the whole horizon. The planner asks a
// ParticleStep for each horizon step; all of a half-population's x particles rows go
// through it in one call (one batched pass per layer per step, no per-particle loop).
//
// Two cores: the population is scored in two halves, each drawing its particles'
// randomness from a generator of its own, side by side with 2+ threads (PairedWork) and
// one after the other with 1, so the plan does not depend on the thread count.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include "tom/core/settings.hpp"

namespace tom {
class WorkerThread;
}

namespace tom::agents {

struct CemSettings {
  std::string method = "cem";
  int horizon = 30;
  int population = 500;
  int elites = 50;
  int iterations = 5;
  double momentum = 0.1;
  int particles = 20;
  double population_decay = 1.25;
  double noise_exponent = 2.0;
  double keep_elites = 0.1;

  template <class V>
  void visit(V& v) {
    v("method", method, "cem (Gaussian sampling) or icem (coloured noise, shrinking population, kept elites)",
      OneOf{"cem", "icem"});
    v("horizon", horizon, "planning horizon in env steps", Range::at_least(1));
    v("population", population, "action sequences drawn per CEM iteration", Range::at_least(2));
    v("elites", elites, "best sequences the distribution is refitted to", Range::at_least(1));
    v("iterations", iterations, "CEM iterations per env step", Range::at_least(1));
    v("momentum", momentum, "weight of the previous mean and variance in each refit (mbrl-lib's alpha)",
      Range::probability());
    v("particles", particles, "trajectories each sequence is scored on (the model's randomness)",
      Range::at_least(1));
    v("population_decay", population_decay, "icem: the population divides by this each iteration",
      Range::at_least(1));
    v("noise_exponent", noise_exponent, "icem: exponent of the noise's 1/f power spectrum (0: white noise)",
      Range::between(0, 10));
    v("keep_elites", keep_elites, "icem: fraction of the elites scored again in the next iteration and env step",
      Range::probability());
  }
};

// n draws of [horizon, dims] standard normal noise coloured along the horizon: power
// spectrum 1/f^exponent (0: white; 2: a random walk's), each step unit variance.
torch::Tensor coloured_noise(std::int64_t n, std::int64_t horizon, std::int64_t dims, double exponent,
                             torch::Generator& gen);

// Rows [R, O] of observations and [R, A] of actions in, the next observations [R, O],
// rewards [R] and termination flags [R] (bool) out; the step's randomness (a model's
// sampling) drawn from `gen`. Called from two threads at once (each with its own
// generator) when the planner has 2+ threads: it must not change shared state.
struct ParticleStepResult {
  torch::Tensor next_obs, reward, terminated;
};
using ParticleStep =
    std::function<ParticleStepResult(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen)>;

class CemPlanner {
 public:
  // low/high: the action bounds (finite, low < high). Throws tom::Error on bad settings
  // (elites > population).
  CemPlanner(const CemSettings& settings, const std::vector<double>& low, const std::vector<double>& high,
             std::uint64_t seed = 0, torch::Device device = torch::kCPU);
  ~CemPlanner();

  // The action to take at observation `obs` [O]; `blocks` (>= 1, dividing particles)
  // is the number of predictors `step` propagates in blocks. Keeps the plan for the next
  // call's warm start.
  std::vector<double> act(std::span<const double> obs, const ParticleStep& step, int blocks = 1);
  // A new episode: forget the plan.
  void reset();

  const CemSettings& settings() const { return settings_; }
  // The last act()'s figures: the best sequence's predicted return, and the mean over
  // the last elites.
  double last_best_return() const { return best_return_; }
  double last_elite_return() const { return elite_return_; }

  // The plan in force (for the warm start) and the generator.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  torch::Tensor returns(const torch::Tensor& obs, const torch::Tensor& sequences, const ParticleStep& step,
                        int blocks, torch::Generator& gen) const;
  // returns() of the population in two halves, side by side with 2+ threads.
  torch::Tensor paired_returns(const torch::Tensor& obs, const torch::Tensor& sequences, const ParticleStep& step,
                               int blocks);
  // One iteration's candidate sequences around mean with variance var.
  torch::Tensor candidates(int iteration, const torch::Tensor& mean, const torch::Tensor& var);

  bool icem_;

  CemSettings settings_;
  torch::Device device_;
  std::int64_t action_dim_;
  torch::Tensor low_, high_;  // [A] float32
  torch::Tensor mean_;        // [H, A] the plan; undefined after reset()
  torch::Tensor kept_;        // icem: [K, H, A] elites kept for the next iteration (or env step)
  torch::Generator gen_;                 // the candidate sequences
  torch::Generator particle_gens_[2];  // each half-population's particles
  std::unique_ptr<WorkerThread> worker_;  // the second half's thread, started on first use
  double best_return_ = 0.0, elite_return_ = 0.0;
};

}  // namespace tom::agents
