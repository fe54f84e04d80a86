#include "tom/nn/adam.hpp"

#include <cmath>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::nn {

void adam_update(const torch::Tensor& values, const torch::Tensor& grad, const torch::Tensor& first_moment,
                 const torch::Tensor& second_moment, std::int64_t step, const AdamHyperparameters& hyper,
                 double weight_decay) {
  auto is_buffer = [&](const torch::Tensor& t) {
    return t.dim() == 1 && t.numel() == values.numel() && t.scalar_type() == torch::kFloat32 &&
           t.device() == values.device();
  };
  for (const auto* t : {&values, &grad, &first_moment, &second_moment})
    if (!is_buffer(*t))
      fail("Adam step: values {} and gradient/moment {} must be 1-D float32 buffers of one size on one device",
           shape_of(values), shape_of(*t));
  if (step < 1) fail("Adam step: the step count starts at 1 (got {})", step);
  const double correction1 = 1.0 - std::pow(hyper.beta1, static_cast<double>(step));
  const double root_correction2 = std::sqrt(1.0 - std::pow(hyper.beta2, static_cast<double>(step)));
  const double step_size = hyper.lr / correction1;
  torch::NoGradGuard no_grad;
  const bool fused = values.is_cpu() && values.is_contiguous() && grad.is_contiguous() &&
                     first_moment.is_contiguous() && second_moment.is_contiguous();
  if (fused) {
    const AdamCoefficients c{static_cast<float>(hyper.beta1),       static_cast<float>(hyper.beta2),
                             static_cast<float>(hyper.eps),         static_cast<float>(weight_decay),
                             static_cast<float>(step_size),         static_cast<float>(root_correction2)};
    adam_kernel(values.data_ptr<float>(), grad.data_ptr<float>(), first_moment.data_ptr<float>(),
                second_moment.data_ptr<float>(), values.numel(), c);
    return;
  }
  // The same arithmetic as LibTorch operations (another device, or strided views).
  const auto g = weight_decay != 0.0 ? grad + weight_decay * values : grad;
  first_moment.mul_(hyper.beta1).add_(g, 1.0 - hyper.beta1);
  second_moment.mul_(hyper.beta2).addcmul_(g, g, 1.0 - hyper.beta2);
  values.addcdiv_(first_moment, second_moment.sqrt().div_(root_correction2).add_(hyper.eps), -step_size);
}

FlatAdam::FlatAdam(std::int64_t num_parameters, double lr, torch::Device device, double beta1, double beta2,
                   double eps)
    : hyper_{lr, beta1, beta2, eps} {
  if (!(lr > 0) || !std::isfinite(lr)) fail("Adam learning rate must be positive and finite (got {})", lr);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  exp_avg_ = torch::zeros({num_parameters}, options);
  exp_avg_sq_ = torch::zeros({num_parameters}, options);
}

void FlatAdam::step(const torch::Tensor& params, const torch::Tensor& grad) {
  adam_update(params, grad, exp_avg_, exp_avg_sq_, ++step_, hyper_);
}

void FlatAdam::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "/exp_avg", exp_avg_);
  archive.write(prefix + "/exp_avg_sq", exp_avg_sq_);
  archive.write(prefix + "/step", torch::tensor(step_, torch::kInt64));
}

void FlatAdam::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  auto exp_avg = read_tensor(archive, prefix + "/exp_avg", "optimiser");
  auto exp_avg_sq = read_tensor(archive, prefix + "/exp_avg_sq", "optimiser");
  auto step = read_tensor(archive, prefix + "/step", "optimiser");
  if (exp_avg.sizes() != exp_avg_.sizes() || exp_avg_sq.sizes() != exp_avg_sq_.sizes() || step.numel() != 1)
    fail("checkpoint entry {}: optimiser state for {} parameters, expected {}", prefix, exp_avg.numel(),
         exp_avg_.numel());
  torch::NoGradGuard no_grad;
  exp_avg_.copy_(exp_avg);
  exp_avg_sq_.copy_(exp_avg_sq);
  step_ = step.item<std::int64_t>();
}

}  // namespace tom::nn
