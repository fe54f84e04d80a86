#include <gtest/gtest.h>

#include <sstream>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/nn/adam.hpp"

namespace {

using tom::nn::adam_update;
using tom::nn::AdamHyperparameters;

// A 1-D view with stride 2: adam_update takes its LibTorch-operations path for it.
torch::Tensor strided_copy(const torch::Tensor& t) {
  auto wide = torch::zeros({2 * t.numel()});
  auto view = wide.slice(0, 0, 2 * t.numel(), 2);
  view.copy_(t);
  return view;
}

// Both of adam_update's paths follow torch::optim::Adam, L2 decay included, over a size
// that is not a multiple of any vector width.
TEST(AdamUpdate, FusedAndOperationPathsMatchLibTorchAdam) {
  tom::set_threads(1);
  constexpr std::int64_t n = 1037;
  constexpr double lr = 3e-3, decay = 0.05;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  const auto start = torch::randn({n}, gen);
  auto fused = start.clone(), fused_m = torch::zeros({n}), fused_v = torch::zeros({n});
  auto strided = strided_copy(start), strided_m = strided_copy(torch::zeros({n})),
       strided_v = strided_copy(torch::zeros({n}));
  auto theirs = start.clone().requires_grad_(true);
  torch::optim::Adam reference({theirs}, torch::optim::AdamOptions(lr).weight_decay(decay));
  for (std::int64_t step = 1; step <= 6; ++step) {
    const auto grad = torch::randn({n}, gen);
    const auto grad_before = grad.clone();
    adam_update(fused, grad, fused_m, fused_v, step, AdamHyperparameters{.lr = lr}, decay);
    adam_update(strided, strided_copy(grad), strided_m, strided_v, step, AdamHyperparameters{.lr = lr}, decay);
    EXPECT_TRUE(torch::equal(grad, grad_before)) << "the gradient is only read";
    theirs.mutable_grad() = grad.clone();
    reference.step();
  }
  EXPECT_TRUE(torch::allclose(fused, theirs.detach(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(strided, theirs.detach(), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(fused, start, 1e-5, 1e-6)) << "the values moved";
}

TEST(AdamUpdate, MismatchedBuffersAndStepZeroAreNamed) {
  const auto four = torch::zeros({4});
  const AdamHyperparameters hyper;
  EXPECT_THROW(adam_update(four, torch::zeros({5}), torch::zeros({4}), torch::zeros({4}), 1, hyper), tom::Error);
  EXPECT_THROW(adam_update(four, torch::zeros({4}), torch::zeros({2, 2}), torch::zeros({4}), 1, hyper), tom::Error);
  EXPECT_THROW(adam_update(four, torch::zeros({4}, torch::kFloat64), torch::zeros({4}), torch::zeros({4}), 1, hyper),
               tom::Error);
  try {
    adam_update(four, torch::zeros({4}), torch::zeros({4}), torch::zeros({4}), 0, hyper);
    FAIL() << "step 0 accepted";
  } catch (const tom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("step count"), std::string::npos) << e.what();
  }
}

TEST(FlatAdam, MatchesLibTorchAdam) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto start = torch::randn({50}, gen);
  auto ours = start.clone();
  auto theirs = start.clone().requires_grad_(true);
  tom::nn::FlatAdam adam(50, 1e-2);
  torch::optim::Adam reference({theirs}, torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 5; ++step) {
    const auto grad = torch::randn({50}, gen);
    adam.step(ours, grad);
    theirs.mutable_grad() = grad.clone();
    reference.step();
  }
  EXPECT_EQ(adam.steps(), 5);
  EXPECT_TRUE(torch::allclose(ours, theirs.detach(), 1e-5, 1e-6));
}

TEST(FlatAdam, SaveLoadContinuesIdentically) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  tom::nn::FlatAdam adam(10, 1e-3);
  auto params = torch::zeros({10});
  adam.step(params, torch::randn({10}, gen));
  torch::serialize::OutputArchive out;
  adam.save(out, "adam");
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream stream(bytes.str());
  in.load_from(stream);
  tom::nn::FlatAdam restored(10, 1e-3);
  restored.load(in, "adam");
  auto params2 = params.clone();
  const auto grad = torch::randn({10}, gen);
  adam.step(params, grad);
  restored.step(params2, grad);
  EXPECT_TRUE(torch::equal(params, params2));
  tom::nn::FlatAdam wrong_size(11, 1e-3);
  EXPECT_THROW(wrong_size.load(in, "adam"), tom::Error);
  EXPECT_THROW(restored.load(in, "missing"), tom::Error);
}

}  // namespace
