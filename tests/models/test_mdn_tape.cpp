// The MDN's hand-written training gradient (MdnTape) against autograd through the
// model's own definition of its loss (forward_rows), and a fit through it against a fit
// through autograd.
#include <gtest/gtest.h>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/models/mdn.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::models {
namespace {

// Opens the protected pieces under test.
class MdnProbe : public MixtureDensityNetwork {
 public:
  using MixtureDensityNetwork::MixtureDensityNetwork;
  using MixtureDensityNetwork::forward_rows;
  using MixtureDensityNetwork::likelihood_gradient;
  FlatParameters& flat() { return params_; }
};

MdnSettings small_settings(const std::string& variance_floor) {
  MdnSettings settings;
  settings.hidden_layers = 2;
  settings.hidden_units = 16;
  settings.components = 3;
  settings.variance_floor = variance_floor;
  settings.fit.batch_size = 20;
  return settings;
}

void expect_gradient_matches_autograd(const std::string& variance_floor) {
  SCOPED_TRACE(variance_floor);
  set_threads(1);
  torch::manual_seed(11);
  MdnProbe model(3, 2, small_settings(variance_floor), /*seed=*/2);
  {
    torch::NoGradGuard no_grad;
    // Larger weights than the initialisation, so raw variances reach softplus's linear
    // branch (> 20) and responsibilities are far from uniform.
    model.flat().values().normal_(0.0, 1.5);
  }
  const std::int64_t n = 7;  // fewer rows than the tape holds (10)
  const auto inputs = torch::randn({1, n, 5}), targets = torch::randn({1, n, 4}) * 2;
  const auto row_weights = (torch::rand({1, n}) + 0.1) / static_cast<double>(n);

  auto& flat = model.flat();
  flat.zero_grad();
  const auto rows = model.forward_rows(inputs, targets, false);
  const auto expected_loss = (rows.objective * row_weights).sum();
  expected_loss.backward();
  const auto expected_gradient = flat.gradient().clone();
  ASSERT_GT(expected_gradient.abs().max().item<double>(), 0.0);

  const auto [loss, gradient] = model.likelihood_gradient(0, inputs, targets, row_weights);
  EXPECT_NEAR(loss.item<double>(), expected_loss.item<double>(), 1e-4 * std::abs(expected_loss.item<double>()));
  EXPECT_TRUE(torch::allclose(gradient, expected_gradient, 1e-4, 1e-6))
      << "largest difference " << (gradient - expected_gradient).abs().max().item<double>();
  if (variance_floor == "learned") EXPECT_NE(gradient[-1].item<double>(), 0.0);
  // The other slot's buffers are its own: the first slot's result stays put.
  const auto kept = gradient.clone();
  model.likelihood_gradient(1, inputs * 2, targets, row_weights);
  EXPECT_TRUE(torch::equal(gradient, kept));
}

TEST(MdnTape, GradientMatchesAutogradWithAFixedFloor) { expect_gradient_matches_autograd("fixed"); }

TEST(MdnTape, GradientMatchesAutogradWithALearnedFloor) { expect_gradient_matches_autograd("learned"); }

// In bf16 the tape computes what autograd computes through the same bf16 products, and
// stays within bf16's rounding of the fp32 gradient (SiLU is smooth: no unit switches).
TEST(MdnTape, InBf16MatchesAutogradInBf16AndStaysNearFp32) {
  if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  set_threads(1);
  torch::manual_seed(12);
  MdnSettings settings = small_settings("learned");
  settings.hidden_units = 200;
  MdnProbe model(11, 3, settings, /*seed=*/3);
  const std::int64_t n = 64;
  const auto inputs = torch::randn({1, n, 14}), targets = torch::randn({1, n, 12});
  const auto row_weights = torch::full({1, n}, 1.0 / n);
  auto tape_gradient = [&] { return model.likelihood_gradient(0, inputs, targets, row_weights).gradient.clone(); };
  const auto fp32 = tape_gradient();
  torch::Tensor bf16, autograd_bf16;
  {
    nn::MatmulPrecisionScope in_bf16(nn::Precision::bf16);
    bf16 = tape_gradient();
    auto& flat = model.flat();
    flat.zero_grad();
    (model.forward_rows(inputs, targets, false).objective * row_weights).sum().backward();
    autograd_bf16 = flat.gradient().clone();
  }
  auto relative = [](const torch::Tensor& got, const torch::Tensor& want) {
    return (got - want).norm().item<double>() / want.norm().item<double>();
  };
  EXPECT_LT(relative(bf16, autograd_bf16), 1e-4);
  EXPECT_LT(relative(bf16, fp32), 0.02);
  EXPECT_GT(relative(bf16, fp32), 1e-5);  // rounded: not the fp32 path
}

TEST(MdnTape, RejectsWrongShapes) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  MdnTape tape({4, 8, 3 * 2 * 2}, 2, 2, 5, options);
  std::vector<torch::Tensor> parameters{torch::zeros({4, 8}), torch::zeros({8}), torch::zeros({8, 12}),
                                        torch::zeros({12})};
  std::vector<torch::Tensor> gradients;
  for (const auto& p : parameters) gradients.push_back(torch::empty_like(p));
  EXPECT_NO_THROW(tape.loss_and_gradient(parameters, 1e-3, torch::zeros({5, 4}), torch::zeros({5, 2}),
                                         torch::ones({5}), gradients));
  EXPECT_THROW(tape.loss_and_gradient(parameters, 1e-3, torch::zeros({6, 4}), torch::zeros({6, 2}), torch::ones({6}),
                                      gradients),
               Error);  // more rows than the tape holds
  EXPECT_THROW(tape.loss_and_gradient(parameters, 1e-3, torch::zeros({5, 3}), torch::zeros({5, 2}), torch::ones({5}),
                                      gradients),
               Error);
  EXPECT_THROW(tape.loss_and_gradient(parameters, 1e-3, torch::zeros({5, 4}), torch::zeros({5, 2}), torch::ones({4}),
                                      gradients),
               Error);
  EXPECT_THROW(MdnTape({4, 8, 10}, 2, 2, 5, options), Error);  // output width is not 3 * 2 * 2
}

// The fit takes the hand-written path without a custom loss; a custom loss equal to the
// likelihood (each dimension's NLL, summed) goes through autograd. Same data, weights
// and draws: the fitted parameters agree to rounding.
TEST(MdnTape, FitMatchesTheAutogradFit) {
  set_threads(1);
  torch::manual_seed(4);
  const std::int64_t n = 290;  // 232 training rows: the last batch is short
  const auto obs = torch::randn({n, 3}), action = torch::rand({n, 2}) * 2 - 1;
  const Transitions data{obs, action, torch::randn({n}), obs + 0.1 * torch::randn({n, 3})};
  const auto weights = data::Weights::checked(torch::rand({n}) + 0.2, n, "test weights");
  auto settings = small_settings("learned");
  settings.fit.max_epochs = 3;
  settings.fit.patience = 10;
  settings.weight_decay = 1e-4;
  const BatchLoss likelihood = [](const BatchLossInput& in) { return in.dim_nll.sum(2); };
  MixtureDensityNetwork by_hand(3, 2, settings, /*seed=*/9), by_autograd(3, 2, settings, /*seed=*/9);
  by_hand.fit(data, weights);
  by_autograd.fit(data, weights, likelihood);
  EXPECT_FALSE(torch::equal(by_hand.parameters(), MixtureDensityNetwork(3, 2, settings, 9).parameters()));
  EXPECT_TRUE(torch::allclose(by_hand.parameters(), by_autograd.parameters(), 1e-4, 1e-5))
      << "largest difference " << (by_hand.parameters() - by_autograd.parameters()).abs().max().item<double>();
}

}  // namespace
}  // namespace tom::models
