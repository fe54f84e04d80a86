#pragma once
// The learned dynamics model interface shared by the probabilistic ensemble (MBPO) and
// the mixture density network (the TOM paper's default), and the weighted
// maximum-likelihood fit both use.
//
// A model predicts a distribution over y = [reward, next_obs - obs] from x = [obs, action].
// x and y are standardised with statistics of the training set (two Normalisers, saved
// with the model). Termination is not the model's business: the caller applies the
// task's rule (see sample_step below).
//
// fit() reads as its steps: prepare (check the data, normalise the weights, split off a
// held-out set, fit the normalisers), then epochs until early stopping or max_epochs,
// each drawing its minibatches from an EpochSampler and scoring the held-out set; then
// the elites (the members with the lowest held-out score).
//
// Weighted maximum likelihood (`weighting`): with per-transition weights w (normalised to
// mean 1), "loss" multiplies each transition's loss by w; "sample" draws minibatches with
// probability proportional to w and leaves the loss unweighted. The held-out score is
// weighted by the same weights. With all weights equal both are plain maximum
// likelihood. Clipping is the weights' producer's business (the objective's plan).
//
// A gradient step computes its minibatch's loss and gradient in two halves of the rows,
// summed into one Adam step; with 2+ threads the halves run at the same time on two
// cores, and the results are the same as with 1 thread.
//
// The fit's settings and its schedule (minibatches per epoch, early stopping) are in
// fit_schedule.hpp.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/core/settings.hpp"
#include "tom/core/termination_fn.hpp"
#include "tom/data/weights.hpp"
#include "tom/models/fit_schedule.hpp"
#include "tom/models/flat_parameters.hpp"
#include "tom/models/normaliser.hpp"

namespace tom {
class WorkerThread;
}

namespace tom::models {

// A dataset of N transitions.
struct Transitions {
  torch::Tensor obs;       // [N, O]
  torch::Tensor action;    // [N, A]
  torch::Tensor reward;    // [N]
  torch::Tensor next_obs;  // [N, O]
  // [N] int64, optional: where each row came from (a replay slot, when the rows are a
  // resample of the buffer); a custom batch loss sees these as its indices. Undefined:
  // the row numbers.
  torch::Tensor origin;
};

// One predicted transition per input row.
struct Prediction {
  torch::Tensor next_obs;  // [B, O]
  torch::Tensor reward;    // [B]
};

// What a custom batch loss sees, for M trained members (1 for the MDN) and B rows each.
// mean/logvar are the predicted Gaussian moments of y = [reward, next_obs - obs] in raw
// (unnormalised) units, differentiable with respect to the parameters; for the MDN they
// are the mixture's mean and total variance. dim_nll is each output dimension's own
// negative log-likelihood of its target in the model's normalised units (y / target_scale
// up to a shift), differentiable: for the MDN each dimension is a mixture of its own.
struct BatchLossInput {
  const torch::Tensor& mean;          // [M, B, 1 + O]
  const torch::Tensor& logvar;        // [M, B, 1 + O]
  const torch::Tensor& target;        // [M, B, 1 + O] observed y, raw units
  const torch::Tensor& indices;       // [M, B] int64: origins of the rows (Transitions::origin)
  const torch::Tensor& dim_nll;       // [M, B, 1 + O], normalised units
  const torch::Tensor& target_scale;  // [1 + O]: raw units per normalised unit of y
};
// Returns the loss of each row, [M, B]. fit() weights and averages it as it does the
// likelihood loss and adds the model's regularisers. It replaces the likelihood both on
// training minibatches and on the held-out set (there under NoGradGuard). VaGraM uses
// this: a value-gradient weighted squared error of the mean, looking up each row's value
// gradient by its index.
using BatchLoss = std::function<torch::Tensor(const BatchLossInput&)>;

// Losses are means over rows (weighted as in the fit) and over the elite members, in
// normalised units: nll is the negative log-likelihood per output dimension, mse the
// squared error of the predicted mean per output dimension. Train figures are measured
// after the fit on (up to max_holdout of) the training rows.
struct FitReport {
  double train_nll = 0.0, holdout_nll = 0.0;
  double train_mse = 0.0, holdout_mse = 0.0;
  int epochs = 0;
  std::int64_t gradient_steps = 0;
  bool stopped_early = false;  // false: max_epochs was reached
  std::vector<double> member_holdout_loss;  // the elite-ranking loss of every trained member
};

class DynamicsModel {
 public:
  virtual ~DynamicsModel();
  DynamicsModel(const DynamicsModel&) = delete;
  DynamicsModel& operator=(const DynamicsModel&) = delete;

  // Fits to `data` with one weight per transition (uniform: plain likelihood), rescaled
  // to mean 1 over the rows. holdout_ratio > 0 and a non-empty epoch (one of
  // epoch_forms()) override the settings for this fit. Throws tom::Error on bad shapes,
  // NaN/inf data, weights that are all zero or of another length, an unknown epoch form,
  // or when training produces a non-finite loss; in that last case the model is restored
  // to its state before fit().
  FitReport fit(const Transitions& data, const data::Weights& weights = {}, const BatchLoss& loss = nullptr,
                double holdout_ratio = 0.0, const std::string& epoch = {});

  // One sampled transition per row of obs [B, O] and action [B, A], its randomness drawn
  // from `gen` (by default the model's own generator). Draws from distinct generators may
  // run on two threads at once.
  Prediction sample(const torch::Tensor& obs, const torch::Tensor& action) { return sample(obs, action, generator_); }
  virtual Prediction sample(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) = 0;
  // The expected transition (ensemble: the mean over elites).
  virtual Prediction mean(const torch::Tensor& obs, const torch::Tensor& action) = 0;
  // The predicted distribution of each row's y = [reward, next_obs - obs], raw units: an
  // ensemble's is the mixture of its elites (the mean of their means; their mean variance
  // plus the variance of their means), the MDN's its mixture's mean and total variance.
  struct Moments {
    torch::Tensor mean, variance;  // [B, 1 + O]
  };
  Moments moments(const torch::Tensor& obs, const torch::Tensor& action);
  // TS-inf propagation (PETS): the predictors a particle can be kept on (an ensemble's
  // elites; 1 for a single network), and one sampled transition per row with the rows in
  // that many equal consecutive blocks, block b always predicted by predictor b.
  virtual std::int64_t predictors() const { return 1; }
  Prediction sample_by_block(const torch::Tensor& obs, const torch::Tensor& action) {
    return sample_by_block(obs, action, generator_);
  }
  virtual Prediction sample_by_block(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) {
    return sample(obs, action, gen);
  }

  // Parameters, optimiser state, normalisers, elites and generator state.
  void save(torch::serialize::OutputArchive& archive) const;
  void save(const std::string& path) const;
  // Throws tom::Error naming the mismatch when the stored model has another shape.
  void load(torch::serialize::InputArchive& archive);
  void load(const std::string& path);

  std::int64_t obs_dim() const { return obs_dim_; }
  std::int64_t action_dim() const { return action_dim_; }
  const std::vector<std::int64_t>& elites() const { return elites_; }
  const Normaliser& input_normaliser() const { return input_norm_; }
  const Normaliser& target_normaliser() const { return target_norm_; }
  const FitSettings& fit_settings() const { return fit_settings_; }
  torch::Device device() const { return device_; }
  // All parameter values as one flat tensor (read-only use: comparing, averaging).
  const torch::Tensor& parameters() const { return params_.values(); }

 protected:
  // Per-row results of one forward pass over inputs [M, B, in] and targets [M, B, D]
  // (normalised units). objective is the model's training loss per row; nll the
  // negative log-likelihood per output dimension; mean/logvar the Gaussian moments and
  // dim_nll each dimension's own negative log-likelihood, filled only when asked for.
  struct RowOutputs {
    torch::Tensor objective, nll;        // [M, B]
    torch::Tensor mean, logvar, dim_nll;  // [M, B, D]
  };

  DynamicsModel(std::int64_t obs_dim, std::int64_t action_dim, const FitSettings& fit_settings, std::uint64_t seed,
                torch::Device device);

  // Members trained side by side on their own minibatches (ensemble size; 1 for the MDN).
  virtual std::int64_t trained_members() const = 0;
  virtual std::int64_t elite_count() const = 0;
  virtual bool bootstrap() const = 0;
  virtual RowOutputs forward_rows(const torch::Tensor& inputs, const torch::Tensor& targets, bool with_moments) = 0;
  // Data-independent loss terms (log-variance bounds); undefined when there are none.
  virtual torch::Tensor regulariser() { return {}; }
  // A model that computes the gradient of its training loss by hand (no autograd graph)
  // says so here, and fit() then calls likelihood_gradient() instead of autograd whenever
  // no custom batch loss is given. That returns sum_rows(row_weights * objective) over
  // inputs [M, n, in] and targets [M, n, D] (regularisers included) and its gradient, a
  // flat tensor laid out like parameters() that stays the model's until the next call with
  // the same `slot`. Slots 0 and 1 (a minibatch's two halves) may run at the same time.
  virtual bool has_likelihood_gradient() const { return false; }
  struct LossAndGradient {
    torch::Tensor loss, gradient;
  };
  virtual LossAndGradient likelihood_gradient(int slot, const torch::Tensor& inputs, const torch::Tensor& targets,
                                              const torch::Tensor& row_weights);
  // Shape facts checked on load, e.g. {"hidden_units", 200}.
  virtual std::vector<std::pair<std::string, std::int64_t>> layout() const = 0;
  virtual std::string kind() const = 0;

  // Inputs [B, in] from a batch of observations and actions, checked and normalised.
  torch::Tensor normalised_inputs(const torch::Tensor& obs, const torch::Tensor& action) const;
  // Turns normalised predicted y rows [B, D] into a Prediction.
  Prediction to_prediction(const torch::Tensor& obs, const torch::Tensor& normalised_y) const;
  torch::Tensor uniform(std::vector<std::int64_t> sizes, torch::Generator& gen);   // U[0, 1), on the device
  torch::Tensor gaussian(std::vector<std::int64_t> sizes, torch::Generator& gen);  // N(0, 1), on the device
  torch::Generator& generator() { return generator_; }

  std::int64_t obs_dim_, action_dim_;
  FitSettings fit_settings_;
  torch::Device device_;
  FlatParameters params_;
  std::vector<std::int64_t> elites_;

 private:
  struct HoldoutScores;
  struct Split;
  struct Prepared;
  Prepared prepare(const Transitions& data, const data::Weights& weights, double holdout_ratio);
  double train_epoch(const Split& train, const torch::Tensor& epoch_rows, std::int64_t steps, const BatchLoss& loss);
  HoldoutScores evaluate(const torch::Tensor& inputs, const torch::Tensor& targets, const torch::Tensor& raw_targets,
                         const torch::Tensor& rows, const torch::Tensor& weights, const BatchLoss& loss);
  torch::Tensor row_losses(const RowOutputs& out, const torch::Tensor& raw_targets, const torch::Tensor& indices,
                           const BatchLoss& loss) const;

  torch::Generator generator_;
  Normaliser input_norm_, target_norm_;
  std::unique_ptr<WorkerThread> worker_;  // a gradient step's second half, with 2+ threads
};

// The squared error of the model's expected transition (mean) against observed ones, per
// transition and output (the reward and each next-observation dimension), in raw units:
// rows of obs [N, O], action [N, A], reward [N] and next_obs [N, O].
double prediction_mse(DynamicsModel& model, const torch::Tensor& obs, const torch::Tensor& action,
                      const torch::Tensor& reward, const torch::Tensor& next_obs);

// A model step with the task's termination rule applied.
struct ModelStep {
  torch::Tensor next_obs;    // [B, O]
  torch::Tensor reward;      // [B]
  torch::Tensor terminated;  // [B] bool
};
// Samples one step (or, with sample = false, takes the expected one) and asks
// `is_terminal` which rows ended; throws tom::Error when it returns anything but a [B]
// tensor.
ModelStep sample_step(DynamicsModel& model, const torch::Tensor& obs, const torch::Tensor& action,
                      const TerminationFn& is_terminal, bool sample = true);

}  // namespace tom::models
