#pragma once
// The tanh-squashed Gaussian policy distribution of SAC, from a policy head
// [B, 2A] = [mean, raw log-std]: a = tanh(u), u = mean + exp(log_std) * noise, with
// log_std = clamp(raw, -20, 2). Plain tensor code (autograd can run through it), plus
// the hand-written gradient that SAC's update uses.
#include <torch/torch.h>

namespace tom::agents {

constexpr double kLogStdMin = -20.0;
constexpr double kLogStdMax = 2.0;

struct SquashedSample {
  torch::Tensor raw_log_std, std, noise, pre_tanh;  // [B, A]
  torch::Tensor action;                             // [B, A] in [-1, 1]
  torch::Tensor log_prob;                           // [B], density of `action` (tanh correction included)
};

// noise: [B, A] standard normal draws (zeros give the squashed mean).
SquashedSample squashed_gaussian(const torch::Tensor& head, const torch::Tensor& noise);

// Writes into grad_head [B, 2A] the gradient with respect to the head of
//   sum(grad_action * action) + log_prob_weight * sum(log_prob)
// with the noise held fixed (reparameterisation).
void squashed_gaussian_backward(const SquashedSample& sample, const torch::Tensor& grad_action,
                                double log_prob_weight, torch::Tensor& grad_head);

}  // namespace tom::agents
