#pragma once
// The forms of TOM's dual program behind TomDual (tom_dual.hpp): conjugate, conjugate-u and
// minimax. Each owns its networks, takes its gradient steps and turns a buffer into values
// (dual residuals or raw ratios) and those into weights.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/objectives/divergence.hpp"
#include "tom/objectives/tom_dual.hpp"

namespace tom {
class PairedWork;
}

namespace tom::objectives {

// A dual network, its Polyak-averaged copy (which weighs buffers) and its Adam optimiser;
// checkpointed under `key`, `key`_avg and `key`_opt.
class AveragedNet {
 public:
  AveragedNet(std::string key, std::int64_t input_dim, const TomDualSettings& settings, torch::Device device,
              double output_bias_lr);

  void zero_grad() { optimizer_->zero_grad(); }
  void optimizer_step() { optimizer_->step(); }
  // The online network's gradient tensors, per layer as in DualNetImpl::layers() (allocated
  // on first use), for a gradient computed by hand before optimizer_step().
  nn::MlpLayers online_gradients();
  void update_average(double blend);
  void set_lr_factor(double factor);  // every group's rate = factor x its base rate
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

  DualNet online, averaged;

 private:
  std::string key_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::vector<torch::Tensor> online_params_, averaged_params_;
  std::vector<double> base_lrs_;  // per parameter group
};

// One dual step's checked samples: a replay batch of B transitions, and next actions with
// their probabilities ([K, 2B]) for the B initial states followed by the batch's next states.
struct StepSample {
  ReplayBatch batch;
  torch::Tensor starts_and_nexts;
  NextActions next;
  torch::Tensor next_probs;
};

// A chunk of a checked buffer: [s, a] rows, r, s_next, done and, for the forms that need
// them, next actions for s_next ([K, rows, A]) with their probabilities ([K, rows]).
struct BufferRows {
  torch::Tensor sa, r, s_next, done;
  torch::Tensor next_actions, next_probs;
};

class DualForm {
 public:
  DualForm(const DualForm&) = delete;
  DualForm& operator=(const DualForm&) = delete;
  virtual ~DualForm() = default;

  // Whether values() reads next actions.
  virtual bool needs_next_actions() const { return false; }

  // One gradient step of every network of the form (not of their averages); returns the loss
  // to report. `alongside` (the next step's sampling) runs once, at the same time as part of
  // the step on `pair`'s second thread, or after it with one thread.
  virtual torch::Tensor step(const StepSample& sample, PairedWork& pair, const std::function<void()>& alongside) = 0;

  // Dual residuals e (conjugate forms) or raw ratios w(s,a) (minimax) of a chunk, from the
  // averaged networks.
  virtual torch::Tensor values(const BufferRows& rows) const = 0;

  // A buffer's weights from its values, clipped at clip_max (the model-learning stage
  // rescales them to mean 1 where it takes them: data::Weights).
  virtual torch::Tensor weights(const torch::Tensor& values, double clip_max) const = 0;

  // The raw (unclipped) weights TomDual::train checks, at mean 1 when their
  // scale is free.
  virtual torch::Tensor probe_weights(const torch::Tensor& values) const = 0;
  virtual bool weights_scale_free() const { return false; }

  void update_averages(double blend);
  void set_lr_factor(double factor);
  void save(torch::serialize::OutputArchive& archive) const;
  // Throws tom::Error when the checkpoint holds another form or shape.
  virtual void load(torch::serialize::InputArchive& archive);

  const Divergence& divergence() const { return *divergence_; }
  const AveragedNet& q() const { return q_; }

 protected:
  DualForm(const TomDualSettings& settings, std::int64_t input_dim, torch::Device device,
           std::unique_ptr<const Divergence> divergence, double q_output_bias_lr);

  // What every form's step takes from one forward pass of the online Q.
  struct QTerms {
    torch::Tensor sa;               // [s, a] rows of the batch
    torch::Tensor q_sa;             // Q(s, a)
    torch::Tensor discounted_next;  // gamma (1 - done) E_a'[Q(s', a')]
    torch::Tensor initial_term;     // (1 - gamma) E[Q(s0, a0)]
  };
  QTerms q_terms(const StepSample& sample);  // the whole batch, through autograd
  // Q's input rows for the batch's transitions [first, first + count) into `rows` (made or
  // remade to fit): their [s, a], then their initial states with each of the K next actions,
  // then their next states with each ([count (1 + 2K), S + A]).
  static void fill_q_rows(const StepSample& sample, std::int64_t first, std::int64_t count, torch::Tensor& rows);
  // The terms from Q's values `q` on such rows; initial_term is their share of the batch's.
  QTerms split_q(const torch::Tensor& q, const torch::Tensor& rows, const StepSample& sample, std::int64_t first,
                 std::int64_t count) const;
  // The next-action probabilities [K, count] of those transitions' initial (part 0) or next
  // (part 1) states.
  static torch::Tensor next_probs(const StepSample& sample, int part, std::int64_t first, std::int64_t count);
  void descend_q(const torch::Tensor& loss);  // one optimiser step of Q on `loss`
  void add_net(AveragedNet& net) { nets_.push_back(&net); }  // a form's own network, after Q

  const double gamma_;
  AveragedNet q_;  // made first: every form draws Q's initialisation before its own networks'

 private:
  std::unique_ptr<const Divergence> divergence_;
  torch::Tensor q_rows_;  // q_terms' rows
  std::vector<AveragedNet*> nets_;  // Q, then the form's own; averaged, scheduled and saved in this order
};

// The form named by settings.form over the divergence named by settings.divergence, its
// networks on `device`; throws tom::Error for another name.
std::unique_ptr<DualForm> make_dual_form(const TomDualSettings& settings, std::int64_t input_dim,
                                         torch::Device device);

}  // namespace tom::objectives
