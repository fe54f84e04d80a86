#pragma once
// Multi-layer perceptrons built from torch::nn::Linear, trained with autograd: the
// general-purpose building block (dynamics models, TOM's dual networks, discriminators).
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace tom::nn {

enum class Activation { relu, swish, tanh };

// "relu", "swish" (x * sigmoid(x), also called SiLU) or "tanh"; anything else is a tom::Error.
Activation activation_from_name(const std::string& name);
torch::Tensor activate(const torch::Tensor& x, Activation activation);

// in -> hidden[0] -> ... -> hidden[k-1] -> out, the activation after every hidden layer and
// none after the output layer. Layers start with LibTorch's Linear initialisation
// (uniform in +-1/sqrt(fan_in) for weights and biases), like PyTorch's nn.Linear.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(std::int64_t in, const std::vector<std::int64_t>& hidden, std::int64_t out,
          Activation activation = Activation::relu);
  // x: [..., in] -> [..., out].
  torch::Tensor forward(torch::Tensor x);

 private:
  std::vector<torch::nn::Linear> layers_;
  Activation activation_;
};
TORCH_MODULE(Mlp);

}  // namespace tom::nn
