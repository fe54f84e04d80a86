#include "tom/agents/squashed_gaussian.hpp"

#include <cmath>
#include <numbers>

namespace tom::agents {

SquashedSample squashed_gaussian(const torch::Tensor& head, const torch::Tensor& noise) {
  const std::int64_t action_dim = head.size(1) / 2;
  SquashedSample s;
  const auto mean = head.narrow(1, 0, action_dim);
  s.raw_log_std = head.narrow(1, action_dim, action_dim);
  const auto log_std = s.raw_log_std.clamp(kLogStdMin, kLogStdMax);
  s.std = log_std.exp();
  s.noise = noise;
  s.pre_tanh = mean + s.std * noise;
  s.action = torch::tanh(s.pre_tanh);
  // log N(u; mean, std) - log(1 - tanh(u)^2), with log(1 - tanh(u)^2) written as
  // 2 (log 2 - u - softplus(-2u)), which stays finite where tanh(u) rounds to +-1.
  const double log_norm = 0.5 * std::log(2.0 * std::numbers::pi);
  const auto gaussian = -0.5 * noise.square() - log_std - log_norm;
  const auto log_det = 2.0 * (std::numbers::ln2 - s.pre_tanh - torch::softplus(-2.0 * s.pre_tanh));
  s.log_prob = (gaussian - log_det).sum(1);
  return s;
}

void squashed_gaussian_backward(const SquashedSample& s, const torch::Tensor& grad_action, double log_prob_weight,
                                torch::Tensor& grad_head) {
  const std::int64_t action_dim = s.action.size(1);
  // d/du: through tanh, plus weight * d(-log(1 - tanh(u)^2))/du = 2 weight tanh(u).
  const auto grad_u = grad_action * (1.0 - s.action.square()) + (2.0 * log_prob_weight) * s.action;
  grad_head.narrow(1, 0, action_dim).copy_(grad_u);
  // u depends on log_std through std * noise, and the Gaussian term of log_prob adds
  // -weight * log_std; the clamp passes the gradient only inside its range.
  const auto inside = (s.raw_log_std >= kLogStdMin).logical_and(s.raw_log_std <= kLogStdMax);
  auto grad_log_std = grad_head.narrow(1, action_dim, action_dim);
  at::mul_out(grad_log_std, grad_u * s.std * s.noise - log_prob_weight, inside);
}

}  // namespace tom::agents
