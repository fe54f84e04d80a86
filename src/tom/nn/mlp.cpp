#include "tom/nn/mlp.hpp"

#include "tom/core/error.hpp"

namespace tom::nn {

Activation activation_from_name(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "swish") return Activation::swish;
  if (name == "tanh") return Activation::tanh;
  fail_unknown("unknown activation '{}' (valid: relu, swish, tanh)", name);
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::relu: return torch::relu(x);
    case Activation::swish: return torch::silu(x);
    case Activation::tanh: return torch::tanh(x);
  }
  fail("invalid activation value {}", static_cast<int>(activation));
}

MlpImpl::MlpImpl(std::int64_t in, const std::vector<std::int64_t>& hidden, std::int64_t out,
                 Activation activation)
    : activation_(activation) {
  if (in < 1 || out < 1) fail("MLP input and output sizes must be positive (got {} and {})", in, out);
  std::int64_t width = in;
  for (std::int64_t next : hidden) {
    if (next < 1) fail("MLP hidden layer sizes must be positive (got {})", next);
    layers_.push_back(register_module("layer" + std::to_string(layers_.size()), torch::nn::Linear(width, next)));
    width = next;
  }
  layers_.push_back(register_module("layer" + std::to_string(layers_.size()), torch::nn::Linear(width, out)));
}

torch::Tensor MlpImpl::forward(torch::Tensor x) {
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) x = activate(layers_[i]->forward(x), activation_);
  return layers_.back()->forward(x);
}

}  // namespace tom::nn
