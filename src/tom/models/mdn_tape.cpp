#include "tom/models/mdn_tape.hpp"

#include <cmath>
#include <numbers>

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::models {

MdnTape::MdnTape(std::vector<std::int64_t> widths, std::int64_t outputs, std::int64_t components, std::int64_t rows,
                 const torch::TensorOptions& options)
    : widths_(std::move(widths)), outputs_(outputs), components_(components), rows_(rows) {
  if (widths_.size() < 2 || widths_.back() != 3 * outputs * components || rows < 1)
    fail("MDN tape: {} widths ending in {} for {} outputs x {} components, {} rows", widths_.size(),
         widths_.empty() ? 0 : widths_.back(), outputs, components, rows);
  for (std::size_t l = 1; l + 1 < widths_.size(); ++l) {
    for (auto* list : {&pre_activations_, &activations_, &grad_hidden_, &grad_pre_})
      list->push_back(torch::empty({rows, widths_[l]}, options));
  }
  out_ = torch::empty({widths_.back() * rows}, options);
  grad_out_ = torch::empty_like(out_);
  for (auto* buffer : {&variance_, &variance_slope_, &scaled_error_, &scaled_error_sq_, &joint_, &posterior_, &prior_,
                       &grad_variance_})
    *buffer = torch::empty({outputs * components * rows}, options);
  for (auto* buffer : {&targets_, &max_joint_, &max_logit_, &sum_joint_, &sum_logit_})
    *buffer = torch::empty({outputs * rows}, options);
}

// The buffers viewed at one call's n rows.
struct MdnTape::CallViews {
  torch::Tensor out, grad_out;  // [3 * D * K, n]
  torch::Tensor variance, slope, error, error_sq, joint, posterior, prior, grad_variance;  // [D, K, n]
  torch::Tensor y, max_joint, max_logit, log_mixture, log_normaliser;                       // [D, n]
};

MdnTape::CallViews MdnTape::views(std::int64_t n) const {
  // The first n columns' worth of a flat buffer, as [sizes..., n].
  auto columns = [n](const torch::Tensor& buffer, std::vector<std::int64_t> sizes) {
    std::int64_t count = n;
    for (auto s : sizes) count *= s;
    sizes.push_back(n);
    return buffer.narrow(0, 0, count).view(sizes);
  };
  const auto D = outputs_, K = components_;
  return {columns(out_, {widths_.back()}),       columns(grad_out_, {widths_.back()}),
          columns(variance_, {D, K}),            columns(variance_slope_, {D, K}),
          columns(scaled_error_, {D, K}),        columns(scaled_error_sq_, {D, K}),
          columns(joint_, {D, K}),               columns(posterior_, {D, K}),
          columns(prior_, {D, K}),               columns(grad_variance_, {D, K}),
          columns(targets_, {D}),                columns(max_joint_, {D}),
          columns(max_logit_, {D}),              columns(sum_joint_, {D}),
          columns(sum_logit_, {D})};
}

bool MdnTape::check_call(const std::vector<torch::Tensor>& parameters, const torch::Tensor& inputs,
                         const torch::Tensor& targets, const torch::Tensor& row_weights,
                         const std::vector<torch::Tensor>& gradients) const {
  const auto layers = widths_.size() - 1;
  const bool learned_floor = parameters.size() == 2 * layers + 1;
  if ((parameters.size() != 2 * layers && !learned_floor) || gradients.size() != parameters.size())
    fail("MDN tape: {} parameter and {} gradient tensors for {} layers", parameters.size(), gradients.size(), layers);
  const auto n = inputs.size(0);
  if (inputs.dim() != 2 || n < 1 || n > rows_ || inputs.size(1) != widths_.front() ||
      targets.sizes() != torch::IntArrayRef({n, outputs_}) || row_weights.sizes() != torch::IntArrayRef({n}))
    fail("MDN tape: inputs {}, targets {} and row weights {} for at most {} rows of {} inputs and {} outputs",
         shape_of(inputs), shape_of(targets), shape_of(row_weights), rows_, widths_.front(), outputs_);
  return learned_floor;
}

torch::Tensor MdnTape::loss_and_gradient(const std::vector<torch::Tensor>& parameters, double fixed_floor,
                                         const torch::Tensor& inputs, const torch::Tensor& targets,
                                         const torch::Tensor& row_weights,
                                         const std::vector<torch::Tensor>& gradients) {
  const bool learned_floor = check_call(parameters, inputs, targets, row_weights, gradients);
  torch::NoGradGuard no_grad;
  const CallViews v = views(inputs.size(0));
  const torch::Tensor last_hidden = forward(parameters, inputs, v);
  const torch::Tensor variance_floor =
      learned_floor ? torch::softplus(parameters.back()) : torch::Tensor();
  const torch::Tensor loss = mixture_nll(variance_floor, fixed_floor, targets, row_weights, v);
  output_gradient(row_weights, v);
  if (learned_floor) gradients.back().copy_(v.grad_variance.sum() * torch::sigmoid(parameters.back()));
  backward(parameters, inputs, last_hidden, gradients, v);
  return loss;
}

torch::Tensor MdnTape::forward(const std::vector<torch::Tensor>& parameters, const torch::Tensor& inputs,
                               const CallViews& v) {
  // The swish MLP, keeping each hidden layer's input to its activation; the output layer
  // transposed.
  const auto n = inputs.size(0);
  const auto layers = widths_.size() - 1;
  torch::Tensor h = inputs;
  for (std::size_t l = 0; l + 1 < layers; ++l) {
    auto pre = pre_activations_[l].narrow(0, 0, n);
    nn::linear_out(pre, h, parameters[2 * l], parameters[2 * l + 1]);
    h = activations_[l].narrow(0, 0, n);
    at::silu_out(h, pre);
  }
  const auto last = layers - 1;
  auto out = v.out;
  nn::linear_out(out, parameters[2 * last].t(), h.t(), parameters[2 * last + 1].unsqueeze(1));
  return h;
}

torch::Tensor MdnTape::mixture_nll(const torch::Tensor& learned_floor, double fixed_floor, const torch::Tensor& targets,
                                   const torch::Tensor& row_weights, const CallViews& v) {
  // The mixture likelihood of each dimension: joint = logit + log N(y | mean, variance).
  const auto out_parts = v.out.view({3, outputs_, components_, -1});
  const auto mean = out_parts[0], raw = out_parts[1], logit = out_parts[2];
  auto variance = v.variance, slope = v.slope, error = v.error, error_sq = v.error_sq, joint = v.joint,
       posterior = v.posterior, prior = v.prior, y = v.y, max_joint = v.max_joint, max_logit = v.max_logit,
       log_mixture = v.log_mixture, log_normaliser = v.log_normaliser;
  at::softplus_out(variance, raw, 1, 20);
  if (learned_floor.defined()) {
    variance.add_(learned_floor);
  } else {
    variance.add_(fixed_floor);
  }
  at::sigmoid_out(slope, raw);  // d softplus(raw) / d raw
  y.copy_(targets.t());
  at::sub_out(error, y.unsqueeze(1), mean).div_(variance);
  at::mul_out(error_sq, error, error);
  at::log_out(joint, variance).addcmul_(error_sq, variance).add_(std::log(2.0 * std::numbers::pi)).mul_(-0.5);
  joint.add_(logit);
  // Softmax over the components and its log-sum-exp, shifted by the maximum.
  auto softmax = [](const torch::Tensor& x, torch::Tensor& maximum, torch::Tensor& result, torch::Tensor& log_sum) {
    at::amax_out(maximum, x, {1});
    at::sub_out(result, x, maximum.unsqueeze(1)).exp_();
    at::sum_out(log_sum, result, {1});
    result.div_(log_sum.unsqueeze(1));
    log_sum.log_().add_(maximum);
  };
  softmax(joint, max_joint, posterior, log_mixture);
  softmax(logit, max_logit, prior, log_normaliser);
  return ((log_normaliser - log_mixture) * row_weights).sum();
}

void MdnTape::output_gradient(const torch::Tensor& row_weights, const CallViews& v) {
  // With weight G of the row, posterior responsibilities r = softmax(joint) and prior
  // p = softmax(logit): dL/dlogit = G (p - r), dL/dmean = -G r (y - mean) / variance,
  // dL/dvariance = G r (1 / variance - ((y - mean) / variance)^2) / 2.
  const auto grad_parts = v.grad_out.view({3, outputs_, components_, -1});
  auto grad_mean = grad_parts[0], grad_raw = grad_parts[1], grad_logit = grad_parts[2];
  auto grad_variance = v.grad_variance;
  at::sub_out(grad_logit, v.prior, v.posterior).mul_(row_weights);
  at::mul_out(grad_mean, v.posterior, v.error).mul_(-row_weights);
  at::reciprocal_out(grad_variance, v.variance).sub_(v.error_sq).mul_(v.posterior).mul_(0.5 * row_weights);
  at::mul_out(grad_raw, grad_variance, v.slope);
}

void MdnTape::backward(const std::vector<torch::Tensor>& parameters, const torch::Tensor& inputs,
                       const torch::Tensor& last_hidden, const std::vector<torch::Tensor>& gradients,
                       const CallViews& v) {
  // The transposed output layer, then the hidden layers.
  const auto n = inputs.size(0);
  const auto last = widths_.size() - 2;
  auto grad_weight = gradients[2 * last], grad_bias = gradients[2 * last + 1];
  nn::linear_out(grad_weight, last_hidden.t(), v.grad_out.t());
  at::sum_out(grad_bias, v.grad_out, {1});
  torch::Tensor grad = v.grad_out.t();  // dL/d(layer output), [n, width]
  for (std::size_t l = last; l-- > 0;) {
    auto grad_hidden = grad_hidden_[l].narrow(0, 0, n), grad_pre = grad_pre_[l].narrow(0, 0, n);
    nn::linear_out(grad_hidden, grad, parameters[2 * (l + 1)].t());
    at::silu_backward_out(grad_pre, grad_hidden, pre_activations_[l].narrow(0, 0, n));
    grad = grad_pre;
    const auto layer_input = l == 0 ? inputs : activations_[l - 1].narrow(0, 0, n);
    grad_weight = gradients[2 * l];
    grad_bias = gradients[2 * l + 1];
    nn::linear_out(grad_weight, layer_input.t(), grad);
    at::sum_out(grad_bias, grad, {0});
  }
}

}  // namespace tom::models
