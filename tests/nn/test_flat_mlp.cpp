#include <gtest/gtest.h>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/nn/flat_mlp.hpp"

namespace {

using tom::nn::FlatMlp;
using tom::nn::FlatMlpTape;

// The same network through autograd, with the parameters as a leaf tensor.
torch::Tensor autograd_forward(const FlatMlp& net, const torch::Tensor& params, const torch::Tensor& x) {
  return tom::nn::mlp_forward(net.layer_views(params), x);
}

TEST(FlatMlp, TapeForwardMatchesForward) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  FlatMlp net({5, 16, 16, 2}, gen);
  EXPECT_EQ(net.num_parameters(), 16 * 6 + 16 * 17 + 2 * 17);
  const auto x = torch::randn({8, 5}, gen);
  FlatMlpTape tape(net, 8);
  EXPECT_TRUE(torch::allclose(tape.forward(net, x), net.forward(x)));
}

TEST(FlatMlp, BackwardMatchesAutograd) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  FlatMlp net({6, 32, 32, 3}, gen);
  const auto x = torch::randn({10, 6}, gen).requires_grad_(true);
  const auto grad_out = torch::randn({10, 3}, gen);
  const auto params = net.parameters().clone().requires_grad_(true);
  (autograd_forward(net, params, x) * grad_out).sum().backward();

  FlatMlpTape tape(net, 10);
  tape.forward(net, x.detach());
  auto param_grad = torch::empty_like(net.parameters());
  const auto input_grad = tape.backward(net, grad_out, param_grad, true);
  EXPECT_TRUE(torch::allclose(param_grad, params.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(input_grad, x.grad(), 1e-5, 1e-6));
  // Without a parameter gradient only the input gradient is formed.
  EXPECT_TRUE(torch::allclose(tape.backward(net, grad_out, {}, true), x.grad(), 1e-5, 1e-6));
  EXPECT_FALSE(tape.backward(net, grad_out, param_grad, false).defined());
}

TEST(FlatMlp, InputGradientThroughPlainForward) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  FlatMlp net({4, 8, 1}, gen);
  const auto x = torch::randn({3, 4}, gen).requires_grad_(true);
  const auto grad = torch::autograd::grad({net.forward(x).sum()}, {x})[0];
  EXPECT_EQ(grad.sizes(), x.sizes());
  EXPECT_FALSE(net.parameters().requires_grad());
}

TEST(FlatMlp, RejectsBadShapes) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  EXPECT_THROW(FlatMlp({4}, gen), tom::Error);
  EXPECT_THROW(FlatMlp({4, 0, 1}, gen), tom::Error);
  FlatMlp net({4, 8, 1}, gen);
  EXPECT_THROW(net.forward(torch::zeros({3, 5})), tom::Error);
  EXPECT_THROW(net.set_parameters(torch::zeros({7})), tom::Error);
  FlatMlpTape tape(net, 3);
  EXPECT_THROW(tape.backward(net, torch::zeros({3, 1}), {}, true), tom::Error);  // before forward
  EXPECT_THROW(tape.forward(net, torch::zeros({2, 4})), tom::Error);
  tape.forward(net, torch::zeros({3, 4}));
  EXPECT_THROW(tape.backward(net, torch::zeros({3, 2}), {}, true), tom::Error);
}

}  // namespace
