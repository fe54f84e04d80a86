#include "tom/nn/flat_mlp.hpp"

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::nn {

torch::Tensor mlp_forward(const MlpLayers& layers, const torch::Tensor& x) {
  torch::Tensor h = x;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    h = nn::linear(h, layers.weights[l].t(), layers.biases[l]);
    if (l + 1 < layers.size()) h = torch::relu(h);
  }
  return h;
}

FlatMlp::FlatMlp(std::vector<std::int64_t> sizes, torch::Generator& gen, Init init, torch::Device device)
    : sizes_(std::move(sizes)) {
  if (sizes_.size() < 2) fail("an MLP needs at least input and output sizes (got {} sizes)", sizes_.size());
  std::int64_t total = 0;
  for (std::size_t l = 0; l < sizes_.size(); ++l) {
    if (sizes_[l] < 1) fail("MLP layer sizes must be positive (got {} at position {})", sizes_[l], l);
    if (l > 0) total += sizes_[l] * (sizes_[l - 1] + 1);
  }
  torch::NoGradGuard no_grad;
  params_ = torch::empty({total}, torch::TensorOptions().dtype(torch::kFloat32));
  layers_ = layer_views(params_);
  for (std::size_t l = 0; l < layers_.size(); ++l) initialise_linear(layers_.weights[l], layers_.biases[l], init, gen);
  if (device != torch::Device(torch::kCPU)) {
    params_ = params_.to(device);
    layers_ = layer_views(params_);
  }
}

MlpLayers FlatMlp::layer_views(const torch::Tensor& flat) const {
  MlpLayers views;
  std::int64_t offset = 0;
  for (std::size_t l = 1; l < sizes_.size(); ++l) {
    const std::int64_t in = sizes_[l - 1], out = sizes_[l];
    views.weights.push_back(flat.narrow(0, offset, out * in).view({out, in}));
    views.biases.push_back(flat.narrow(0, offset + out * in, out));
    offset += out * (in + 1);
  }
  return views;
}

void FlatMlp::set_parameters(const torch::Tensor& values) {
  if (values.dim() != 1 || values.numel() != params_.numel())
    fail("MLP parameters: expected {} values, got a tensor of shape {}", params_.numel(), shape_of(values));
  torch::NoGradGuard no_grad;
  params_.copy_(values);
}

torch::Tensor FlatMlp::forward(const torch::Tensor& x) const {
  if (x.dim() != 2 || x.size(1) != sizes_.front())
    fail("MLP input: expected shape [batch, {}], got {}", sizes_.front(), shape_of(x));
  return mlp_forward(layers_, x);
}

FlatMlpTape::FlatMlpTape(std::vector<std::int64_t> sizes, torch::TensorOptions options, std::int64_t batch)
    : sizes_(std::move(sizes)), batch_(batch) {
  if (batch < 1) fail("MLP batch size must be positive (got {})", batch);
  if (sizes_.size() < 2) fail("an MLP needs at least input and output sizes (got {} sizes)", sizes_.size());
  for (std::size_t l = 1; l < sizes_.size(); ++l) {
    outputs_.push_back(torch::empty({batch, sizes_[l]}, options));
    grad_inputs_.push_back(torch::empty({batch, sizes_[l - 1]}, options));
  }
}

FlatMlpTape::FlatMlpTape(const FlatMlp& net, std::int64_t batch)
    : FlatMlpTape(net.sizes(), net.parameters().options(), batch) {}

const torch::Tensor& FlatMlpTape::forward(const MlpLayers& net, const torch::Tensor& x) {
  if (x.dim() != 2 || x.size(0) != batch_ || x.size(1) != sizes_.front())
    fail("MLP input: expected shape [{}, {}], got {}", batch_, sizes_.front(), shape_of(x));
  if (net.size() != outputs_.size())
    fail("MLP tape: the network has {} layers, the tape {}", net.size(), outputs_.size());
  input_ = x;
  const std::size_t layers = net.size();
  for (std::size_t l = 0; l < layers; ++l) {
    const torch::Tensor& in = l == 0 ? input_ : outputs_[l - 1];
    nn::linear_out(outputs_[l], in, net.weights[l].t(), net.biases[l],
               l + 1 < layers ? Epilogue::relu : Epilogue::none);
  }
  return outputs_.back();
}

torch::Tensor FlatMlpTape::backward(const MlpLayers& net, const torch::Tensor& grad_output,
                                    const MlpLayers* param_grad, bool want_input_grad) {
  if (!input_.defined()) fail("MLP backward called before forward");
  if (grad_output.sizes() != outputs_.back().sizes())
    fail("MLP backward: expected output gradient of shape {}, got {}", shape_of(outputs_.back()), shape_of(grad_output));
  if (param_grad && param_grad->size() != net.size())
    fail("MLP backward: gradients for {} layers, the network has {}", param_grad->size(), net.size());
  torch::Tensor grad = grad_output;  // dLoss/d(pre-activation output of layer l)
  for (std::size_t l = net.size(); l-- > 0;) {
    const torch::Tensor& in = l == 0 ? input_ : outputs_[l - 1];
    if (param_grad) {
      torch::Tensor weight_grad = param_grad->weights[l], bias_grad = param_grad->biases[l];
      nn::linear_out(weight_grad, grad.t(), in);
      at::sum_out(bias_grad, grad, {0});
    }
    if (l == 0 && !want_input_grad) break;
    nn::linear_out(grad_inputs_[l], grad, net.weights[l]);
    // ReLU passes the gradient where its output was positive.
    if (l > 0) at::threshold_backward_out(grad_inputs_[l], grad_inputs_[l], outputs_[l - 1], 0);
    grad = grad_inputs_[l];
  }
  return want_input_grad ? grad_inputs_[0] : torch::Tensor();
}

torch::Tensor FlatMlpTape::backward(const FlatMlp& net, const torch::Tensor& grad_output,
                                    const torch::Tensor& param_grad, bool want_input_grad) {
  if (!param_grad.defined()) return backward(net.layers(), grad_output, nullptr, want_input_grad);
  if (param_grad.numel() != net.num_parameters())
    fail("MLP backward: parameter gradient has {} values, the network {}", param_grad.numel(), net.num_parameters());
  const MlpLayers grads = net.layer_views(param_grad);
  return backward(net.layers(), grad_output, &grads, want_input_grad);
}

}  // namespace tom::nn
