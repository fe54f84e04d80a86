#pragma once
// Adam (Kingma & Ba, with PyTorch's bias correction and epsilon placement) on flat
// parameter buffers whose gradients are computed by hand or accumulated into one buffer.
// adam_update is the one definition of the update rule: FlatAdam (SAC's networks) and
// models::FlatParameters (the dynamics models) both step through it.
#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "tom/nn/adam_kernel.hpp"

namespace tom::nn {

struct AdamHyperparameters {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// One Adam step, the `step`-th (from 1), on 1-D float32 tensors of one size: L2 decay
// added to the gradient (PyTorch's Adam weight_decay, MBPO's decay in the loss), the
// moments updated, the values moved; four distinct buffers, grad only read. On the CPU
// with contiguous buffers this is one fused pass over memory (docs/results.md, "Fused
// Adam"); elsewhere it is seven LibTorch operations.
void adam_update(const torch::Tensor& values, const torch::Tensor& grad, const torch::Tensor& first_moment,
                 const torch::Tensor& second_moment, std::int64_t step, const AdamHyperparameters& hyper,
                 double weight_decay = 0.0);

// Adam's state for one flat parameter tensor.
class FlatAdam {
 public:
  FlatAdam(std::int64_t num_parameters, double lr, torch::Device device = torch::kCPU, double beta1 = 0.9,
           double beta2 = 0.999, double eps = 1e-8);
  void step(const torch::Tensor& params, const torch::Tensor& grad);
  std::int64_t steps() const { return step_; }

  // Moments and step count under `prefix`; load checks the sizes and throws tom::Error.
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  AdamHyperparameters hyper_;
  std::int64_t step_ = 0;
  torch::Tensor exp_avg_, exp_avg_sq_;
};

}  // namespace tom::nn
