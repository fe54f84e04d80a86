#pragma once
// A model fit's schedule, apart from the model: its settings (the [ensemble]/[mdn]
// sections' fit half), which training rows each epoch's minibatches take, and when the
// held-out scores say to stop. DynamicsModel::fit (dynamics_model.hpp) drives both.
//
// Minibatches (`epoch`): "pass" shuffles the training rows (each ensemble member its own
// bootstrap sample) and takes min(ceil(n / batch), max_batches_per_epoch) batches;
// "pass-drop-last" the same pass in whole batches only, min(floor(n / batch),
// max_batches_per_epoch) (at least one), as the TOM authors' VaGraM fit does; "draw" takes
// max_batches_per_epoch batches drawn with replacement (by weight in "sample" mode), as
// their MDN fit does. A fit may override the setting (fit()'s `epoch`).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "tom/core/settings.hpp"

namespace tom::models {

// The values of FitSettings::epoch.
inline OneOf epoch_forms() { return OneOf{"pass", "pass-drop-last", "draw"}; }

struct FitSettings {
  std::string weighting = "loss";
  std::string epoch = "pass";
  std::string holdout_score = "mse";
  double learning_rate = 1e-3;
  int batch_size = 256;
  int max_epochs = 1000;
  int max_batches_per_epoch = 0;
  int patience = 5;
  double min_improvement = 0.01;
  double holdout_ratio = 0.2;
  int max_holdout = 5000;

  template <class V>
  void visit(V& v) {
    v("weighting", weighting, "how transition weights enter the fit: scale each loss, or sample minibatches",
      OneOf{"loss", "sample"});
    v("epoch", epoch,
      "minibatches of an epoch: pass (shuffled pass over the data, at most max_batches_per_epoch), pass-drop-last "
      "(the same in whole batches only: min(floor(n / batch), max_batches_per_epoch), at least one) or draw "
      "(max_batches_per_epoch batches drawn with replacement, by weight when weighting = sample)",
      epoch_forms());
    v("holdout_score", holdout_score,
      "held-out score for early stopping and elites: mse (of the predicted mean) or nll (weighted, as the TOM "
      "authors' code)",
      OneOf{"mse", "nll"});
    v("learning_rate", learning_rate, "Adam learning rate of the model", Range::positive());
    v("batch_size", batch_size, "transitions per minibatch (per ensemble member)", Range::at_least(1));
    v("max_epochs", max_epochs, "cap on training epochs per fit", Range::at_least(1));
    v("max_batches_per_epoch", max_batches_per_epoch,
      "pass, pass-drop-last: cap on minibatches per epoch (0: one whole pass); draw: minibatches per epoch (0: "
      "ceil(n / batch))",
      Range::at_least(0));
    v("patience", patience, "stop after this many epochs in a row without held-out improvement",
      Range::at_least(1));
    v("min_improvement", min_improvement, "relative held-out improvement that counts", Range::between(0, 1));
    v("holdout_ratio", holdout_ratio, "fraction of transitions held out for early stopping",
      Range::between(0.01, 0.5));
    v("max_holdout", max_holdout, "cap on held-out transitions", Range::at_least(1));
  }
};

// The minibatch rows of each epoch: [members, steps * batch] rows of the training split
// (a pass gives exactly n columns: its last batch may be shorter, and "pass-drop-last"
// uses only the first steps * batch, or all n when n < batch).
class EpochSampler {
 public:
  // sample_weights: [n] >= 0 (mean 1) used by "draw" in "sample" mode; bootstrap: each
  // member trains on its own resample of the rows (ensembles, "pass" only).
  EpochSampler(const FitSettings& settings, std::int64_t members, std::int64_t rows,
               const torch::Tensor& sample_weights, bool bootstrap, torch::Generator& gen);
  std::int64_t steps() const { return steps_; }
  torch::Tensor next(torch::Generator& gen) const;

 private:
  std::int64_t members_, rows_, batch_, steps_;
  bool draw_, by_weight_;
  torch::Tensor weights_, member_rows_;
  torch::Device device_ = torch::kCPU;
};

// Early stopping on per-member held-out scores: an epoch improves a member when its
// score beats the member's best by min_improvement (relative); training stops after
// `patience` epochs in a row with no member improving.
class EarlyStopping {
 public:
  EarlyStopping(std::int64_t members, int patience, double min_improvement);
  // Records one epoch's scores; true when training should stop.
  bool update(const std::vector<double>& scores);

 private:
  std::vector<double> best_;
  int patience_, epochs_without_improvement_ = 0;
  double min_improvement_;
};

}  // namespace tom::models
