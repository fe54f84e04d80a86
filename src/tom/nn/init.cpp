#include "tom/nn/init.hpp"

#include <cmath>

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::nn {

Init init_from_name(const std::string& name) {
  if (name == "torch") return Init::torch_default;
  if (name == "xavier") return Init::xavier;
  fail_unknown("unknown initialisation '{}' (valid: torch, xavier)", name);
}

void initialise_linear(torch::Tensor weight, torch::Tensor bias, Init init, torch::Generator& gen) {
  if (!weight.defined() || weight.dim() != 2)
    fail("a linear layer's weight must have shape [out, in], got {}", shape_of(weight));
  torch::NoGradGuard no_grad;
  const auto fan_out = static_cast<double>(weight.size(0)), fan_in = static_cast<double>(weight.size(1));
  if (init == Init::xavier) {
    const double bound = std::sqrt(6.0 / (fan_in + fan_out));
    weight.uniform_(-bound, bound, gen);
    if (bias.defined()) bias.zero_();
  } else {
    const double bound = 1.0 / std::sqrt(fan_in);
    weight.uniform_(-bound, bound, gen);
    if (bias.defined()) bias.uniform_(-bound, bound, gen);
  }
}

}  // namespace tom::nn
