#pragma once
// All trainable tensors of a model as views into one contiguous buffer, with their
// gradients in a second buffer and Adam's moments in two more. The optimiser step is
// then a handful of whole-buffer operations instead of a loop over tensors, a snapshot
// is one copy, and a checkpoint is four tensors.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace tom::models {

class FlatParameters {
 public:
  struct Spec {
    std::string name;
    std::vector<std::int64_t> shape;
    double weight_decay = 0.0;  // L2 coefficient: adds weight_decay * value to the gradient
  };

  // The optimiser's state and the values, copied, to undo a failed fit.
  struct Snapshot {
    torch::Tensor values, first_moment, second_moment;
    std::int64_t steps = 0;
  };

  FlatParameters() = default;
  // Allocates zeroed parameters (leaf tensors requiring grad) whose .grad are views of
  // one gradient buffer, so autograd accumulates straight into it.
  FlatParameters(const std::vector<Spec>& specs, torch::Device device);

  std::size_t size() const { return tensors_.size(); }
  const torch::Tensor& operator[](std::size_t i) const { return tensors_[i]; }
  const torch::Tensor& values() const { return values_; }
  std::int64_t numel() const { return values_.numel(); }
  // Views of a flat tensor laid out like values() (a gradient computed by hand), one per
  // spec with its shape.
  std::vector<torch::Tensor> views(const torch::Tensor& flat) const;

  // The gradient buffer, laid out like values(): autograd accumulates into it, and a
  // gradient computed by hand is written to it.
  const torch::Tensor& gradient() const { return grads_; }
  void zero_grad() { grads_.zero_(); }
  // One Adam step (nn::adam_update; betas 0.9/0.999, eps 1e-8) on the gradient buffer,
  // with each tensor's L2 weight decay added to its gradient (decay in the loss, as MBPO).
  // The gradient buffer is left as it was.
  void adam_step(double learning_rate);
  std::int64_t steps() const { return steps_; }

  Snapshot snapshot() const;
  void restore(const Snapshot& snapshot);

  // Writes/reads values and optimiser state under `prefix`. load() throws tom::Error when
  // the stored parameter count differs.
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  struct Segment {
    std::int64_t offset = 0, numel = 0;
    double weight_decay = 0.0;
    std::vector<std::int64_t> shape;
  };
  std::vector<torch::Tensor> tensors_;
  std::vector<Segment> segments_;
  torch::Tensor values_, grads_, first_moment_, second_moment_;
  std::int64_t steps_ = 0;
};

}  // namespace tom::models
