#pragma once
// How a linear layer's parameters start. The papers' codes differ: PyTorch's nn.Linear
// default (the TOM authors' MDN and discriminator), Xavier-uniform weights with zero
// biases (their SAC and dual networks, and softlearning's Keras layers in MBPO's code).
#include <string>

#include <torch/torch.h>

namespace tom::nn {

enum class Init {
  torch_default,  // weights and biases uniform in +-1/sqrt(fan_in)
  xavier,         // weights uniform in +-sqrt(6 / (fan_in + fan_out)), biases 0
};

// "torch" or "xavier"; anything else is a tom::Error.
Init init_from_name(const std::string& name);

// Redraws weight [out, in] and bias [out] (bias may be undefined) in place, from `gen`.
void initialise_linear(torch::Tensor weight, torch::Tensor bias, Init init, torch::Generator& gen);

}  // namespace tom::nn
