#pragma once
// A ReLU MLP for hot training loops (SAC), trained without autograd.
//
// The parameters of all layers live in one contiguous tensor, so an optimiser step, a
// Polyak average or a checkpoint entry is one tensor operation. Training uses a
// hand-written backward pass (FlatMlpTape) on buffers allocated once for a fixed batch
// size: no autograd graph, no per-step allocation, and gradients only for what the
// caller asks (parameters, input, or both). The plain forward() is ordinary LibTorch
// code, so autograd can still differentiate through the network with respect to its
// input (the parameters themselves never require grad).
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "tom/nn/init.hpp"

namespace tom::nn {

// The layers of a ReLU MLP: per layer its weight [out, in] and bias [out]. A FlatMlp's are
// views into its flat parameters; another network (TOM's dual Q) can lend its own tensors
// to run through a FlatMlpTape.
struct MlpLayers {
  std::vector<torch::Tensor> weights, biases;
  std::size_t size() const { return weights.size(); }
};

// x: [B, in] -> [B, out] through `layers` (ReLU after every hidden layer, linear output);
// ordinary LibTorch ops, differentiable with respect to x and the layers.
torch::Tensor mlp_forward(const MlpLayers& layers, const torch::Tensor& x);

class FlatMlp {
 public:
  // sizes = {in, hidden..., out}: ReLU after every hidden layer, linear output. Layers start
  // as `init` says (default: PyTorch's nn.Linear), drawn from `gen` layer by layer.
  FlatMlp(std::vector<std::int64_t> sizes, torch::Generator& gen, Init init = Init::torch_default,
          torch::Device device = torch::kCPU);

  // x: [B, in] -> [B, out]. Differentiable with respect to x.
  torch::Tensor forward(const torch::Tensor& x) const;

  // All parameters, [num_parameters()] float32; weight(l) and bias(l) are views into it.
  const torch::Tensor& parameters() const { return params_; }
  // Replaces the parameter values (same size), keeping the views valid.
  void set_parameters(const torch::Tensor& values);
  std::int64_t num_parameters() const { return params_.numel(); }
  const std::vector<std::int64_t>& sizes() const { return sizes_; }
  // Per-layer views of parameters().
  const MlpLayers& layers() const { return layers_; }

  // Views of a flat tensor laid out like parameters() (e.g. a gradient or a snapshot) as
  // per-layer weights and biases.
  MlpLayers layer_views(const torch::Tensor& flat) const;

 private:
  std::vector<std::int64_t> sizes_;
  torch::Tensor params_;
  MlpLayers layers_;
};

// Forward activations of one MLP shape for a fixed batch size, kept for the backward pass.
// The buffers are allocated on construction; forward() and backward() allocate nothing
// but tensor handles.
class FlatMlpTape {
 public:
  // sizes = {in, hidden..., out}, as FlatMlp's; buffers with `options` (dtype, device).
  FlatMlpTape(std::vector<std::int64_t> sizes, torch::TensorOptions options, std::int64_t batch);
  FlatMlpTape(const FlatMlp& net, std::int64_t batch);

  std::int64_t batch() const { return batch_; }
  // x: [batch, in], kept (not copied) until the next forward. Returns the output
  // [batch, out], a buffer of the tape overwritten by the next forward().
  const torch::Tensor& forward(const MlpLayers& net, const torch::Tensor& x);
  const torch::Tensor& forward(const FlatMlp& net, const torch::Tensor& x) { return forward(net.layers(), x); }
  // Backpropagates grad_output [batch, out] (dLoss/dOutput) through the last forward().
  // Writes dLoss/dParameters into param_grad (one tensor per weight and bias, shaped like
  // them) when given, and returns dLoss/dx [batch, in] (a tape buffer) when
  // want_input_grad, else an undefined tensor.
  torch::Tensor backward(const MlpLayers& net, const torch::Tensor& grad_output, const MlpLayers* param_grad,
                         bool want_input_grad);
  // The same for a FlatMlp, param_grad flat and laid out like net.parameters() (or undefined).
  torch::Tensor backward(const FlatMlp& net, const torch::Tensor& grad_output, const torch::Tensor& param_grad,
                         bool want_input_grad);

 private:
  std::vector<std::int64_t> sizes_;
  std::int64_t batch_;
  torch::Tensor input_;
  std::vector<torch::Tensor> outputs_;      // per layer, after the activation (ReLU) if hidden
  std::vector<torch::Tensor> grad_inputs_;  // per layer, dLoss/d(layer input)
};

}  // namespace tom::nn
