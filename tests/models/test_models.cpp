#include <gtest/gtest.h>

#include <numbers>
#include <optional>

#include <cmath>
#include <filesystem>
#include <string>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/models/ensemble.hpp"
#include "tom/models/mdn.hpp"
#include "tom/nn/matmul.hpp"
#include "tom/models/normaliser.hpp"

namespace tom::models {
namespace {

constexpr std::int64_t kObs = 2, kAct = 1;
constexpr double kNoiseStd = 0.1, kRewardNoiseStd = 0.1;

// s' = A s + B a + N(0, 0.1^2 I), r = c.s + N(0, 0.1^2), with s ~ N(0, I), a ~ U(-1, 1).
// `sign` flips B, making a second system that disagrees with the first on every row.
Transitions linear_system(std::int64_t n, std::uint64_t seed, double sign = 1.0) {
  torch::manual_seed(seed);
  const auto obs = torch::randn({n, kObs});
  const auto action = torch::rand({n, kAct}) * 2 - 1;
  const auto a = torch::tensor({{0.9, 0.2}, {-0.1, 0.8}}, torch::kFloat32);
  const auto b = torch::tensor({{0.5, -0.3}}, torch::kFloat32) * sign;
  const auto c = torch::tensor({1.0, -0.5}, torch::kFloat32);
  const auto next_obs = obs.mm(a.t()) + action.mm(b) + kNoiseStd * torch::randn({n, kObs});
  const auto reward = obs.mv(c) + kRewardNoiseStd * torch::randn({n});
  return {obs, action, reward, next_obs};
}

Prediction true_mean(const torch::Tensor& obs, const torch::Tensor& action, double sign = 1.0) {
  const auto a = torch::tensor({{0.9, 0.2}, {-0.1, 0.8}}, torch::kFloat32);
  const auto b = torch::tensor({{0.5, -0.3}}, torch::kFloat32) * sign;
  return {obs.mm(a.t()) + action.mm(b), obs.mv(torch::tensor({1.0, -0.5}, torch::kFloat32))};
}

Transitions concat(const Transitions& x, const Transitions& y) {
  return {torch::cat({x.obs, y.obs}), torch::cat({x.action, y.action}), torch::cat({x.reward, y.reward}),
          torch::cat({x.next_obs, y.next_obs})};
}

FitSettings quick_fit(int max_epochs = 60) {
  FitSettings fit;
  fit.max_epochs = max_epochs;
  fit.batch_size = 128;
  fit.patience = 8;
  return fit;
}

EnsembleSettings small_ensemble(int max_epochs = 60) {
  EnsembleSettings settings;
  settings.members = 3;
  settings.elites = 2;
  settings.hidden_layers = 2;
  settings.hidden_units = 64;
  settings.fit = quick_fit(max_epochs);
  return settings;
}

MdnSettings small_mdn(int max_epochs = 60) {
  MdnSettings settings;
  settings.hidden_layers = 2;
  settings.hidden_units = 64;
  settings.components = 3;
  settings.fit = quick_fit(max_epochs);
  return settings;
}

double rms(const torch::Tensor& error) { return error.square().mean().sqrt().item<double>(); }

class ModelsTest : public ::testing::Test {
 protected:
  void SetUp() override { tom::set_threads(1); }
};

// The fitted model's mean must match the true dynamics, and samples for a fixed input
// must have the true noise level.
void expect_recovers_linear_system(DynamicsModel& model) {
  const auto report = model.fit(linear_system(4000, 1));
  EXPECT_GT(report.epochs, 5);
  SCOPED_TRACE(fmt::format("{} epochs, held-out mse {}", report.epochs, report.holdout_mse));
  const auto test = linear_system(300, 2);
  const auto predicted = model.mean(test.obs, test.action);
  const auto truth = true_mean(test.obs, test.action);
  EXPECT_LT(rms(predicted.next_obs - truth.next_obs), 0.03);
  EXPECT_LT(rms(predicted.reward - truth.reward), 0.03);

  // Repeat a few inputs many times and compare the sample spread with the true noise.
  const auto obs = test.obs.narrow(0, 0, 5).repeat({4000, 1});
  const auto action = test.action.narrow(0, 0, 5).repeat({4000, 1});
  const auto drawn = model.sample(obs, action);
  const auto next_std = drawn.next_obs.view({4000, 5, kObs}).std(0);
  const auto reward_std = drawn.reward.view({4000, 5}).std(0);
  EXPECT_LT((next_std - kNoiseStd).abs().max().item<double>(), 0.15 * kNoiseStd) << next_std;
  EXPECT_LT((reward_std - kRewardNoiseStd).abs().max().item<double>(), 0.2 * kRewardNoiseStd) << reward_std;
  const auto sample_mean = drawn.next_obs.view({4000, 5, kObs}).mean(0);
  EXPECT_LT(rms(sample_mean - truth.next_obs.narrow(0, 0, 5)), 0.03);

  // The predictive moments: the expected transition as mean(), and the true noise level.
  const auto moments = model.moments(test.obs, test.action);
  ASSERT_EQ(moments.mean.sizes(), (std::vector<std::int64_t>{300, 1 + kObs}));
  EXPECT_LT((moments.mean.select(1, 0) - predicted.reward).abs().max().item<double>(), 1e-4);
  EXPECT_LT((test.obs + moments.mean.narrow(1, 1, kObs) - predicted.next_obs).abs().max().item<double>(), 1e-4);
  const auto predicted_std = moments.variance.sqrt().mean(0);
  EXPECT_LT((predicted_std - kNoiseStd).abs().max().item<double>(), 0.2 * kNoiseStd) << predicted_std;
}

void expect_ensemble_recovers_linear_system() {
  auto settings = small_ensemble(150);
  settings.fit.patience = 20;
  settings.fit.min_improvement = 0.001;
  ProbabilisticEnsemble model(kObs, kAct, settings, 3);
  expect_recovers_linear_system(model);
}

void expect_mdn_recovers_linear_system() {
  auto settings = small_mdn(300);
  settings.fit.patience = 20;
  MixtureDensityNetwork model(kObs, kAct, settings, 3);
  expect_recovers_linear_system(model);
}

TEST_F(ModelsTest, EnsembleRecoversLinearGaussianSystem) { expect_ensemble_recovers_linear_system(); }

TEST_F(ModelsTest, MdnRecoversLinearGaussianSystem) { expect_mdn_recovers_linear_system(); }

// The same fits with bf16 matrix products (nn/matmul.hpp) reach the same accuracy.
class Bf16ModelsTest : public ModelsTest {
 protected:
  void SetUp() override {
    if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
    ModelsTest::SetUp();
    in_bf16_.emplace(nn::Precision::bf16);
  }
  void TearDown() override { in_bf16_.reset(); }

 private:
  std::optional<nn::MatmulPrecisionScope> in_bf16_;
};

TEST_F(Bf16ModelsTest, EnsembleRecoversLinearGaussianSystem) { expect_ensemble_recovers_linear_system(); }

TEST_F(Bf16ModelsTest, MdnRecoversLinearGaussianSystem) { expect_mdn_recovers_linear_system(); }

// Half the data from each of two systems; weight zero on the second must leave a model
// of the first, whichever way weights enter the fit.
template <class Model, class Settings>
void expect_zero_weight_ignores_system(Settings settings, const std::string& weighting) {
  settings.fit.weighting = weighting;
  Model model(kObs, kAct, settings, 5);
  const auto data = concat(linear_system(1500, 6, 1.0), linear_system(1500, 7, -1.0));
  auto weights = torch::cat({torch::ones({1500}), torch::zeros({1500})});
  model.fit(data, data::Weights::checked(weights, 3000, "test"));
  const auto test = linear_system(300, 8);
  const auto predicted = model.mean(test.obs, test.action).next_obs;
  EXPECT_LT(rms(predicted - true_mean(test.obs, test.action, 1.0).next_obs), 0.05) << weighting;
  EXPECT_GT(rms(predicted - true_mean(test.obs, test.action, -1.0).next_obs), 0.2) << weighting;
}

TEST_F(ModelsTest, EnsembleZeroWeightIgnoresSystemBothWays) {
  expect_zero_weight_ignores_system<ProbabilisticEnsemble>(small_ensemble(40), "loss");
  expect_zero_weight_ignores_system<ProbabilisticEnsemble>(small_ensemble(40), "sample");
}

TEST_F(ModelsTest, MdnZeroWeightIgnoresSystemBothWays) {
  expect_zero_weight_ignores_system<MixtureDensityNetwork>(small_mdn(40), "loss");
  expect_zero_weight_ignores_system<MixtureDensityNetwork>(small_mdn(40), "sample");
}

template <class Model, class Settings>
void expect_equal_weights_are_plain_likelihood(Settings settings, const std::string& weighting) {
  settings.fit.weighting = weighting;
  settings.fit.max_epochs = 4;
  const auto data = linear_system(1000, 9);
  Model plain(kObs, kAct, settings, 11), weighted(kObs, kAct, settings, 11);
  const auto plain_report = plain.fit(data);
  const auto weighted_report = weighted.fit(data, data::Weights::checked(torch::full({1000}, 2.5), 1000, "test"));
  EXPECT_TRUE(torch::equal(plain.parameters(), weighted.parameters())) << weighting;
  EXPECT_EQ(plain_report.holdout_nll, weighted_report.holdout_nll) << weighting;
  EXPECT_EQ(plain.elites(), weighted.elites());
  // And a different seed does give different parameters (the comparison can fail).
  Model other(kObs, kAct, settings, 12);
  other.fit(data);
  EXPECT_FALSE(torch::equal(plain.parameters(), other.parameters()));
}

TEST_F(ModelsTest, EqualWeightsAreExactlyPlainMaximumLikelihood) {
  for (const std::string weighting : {"loss", "sample"}) {
    expect_equal_weights_are_plain_likelihood<ProbabilisticEnsemble>(small_ensemble(), weighting);
    expect_equal_weights_are_plain_likelihood<MixtureDensityNetwork>(small_mdn(), weighting);
  }
}

TEST_F(ModelsTest, UnequalWeightsChangeTheFit) {
  auto settings = small_ensemble(3);
  const auto data = linear_system(1000, 9);
  ProbabilisticEnsemble plain(kObs, kAct, settings, 11), weighted(kObs, kAct, settings, 11);
  plain.fit(data);
  weighted.fit(data, data::Weights::checked(torch::rand({1000}) + 0.5, 1000, "test"));
  EXPECT_FALSE(torch::equal(plain.parameters(), weighted.parameters()));
}

TEST_F(ModelsTest, NormaliserRoundTrip) {
  torch::manual_seed(0);
  auto rows = torch::randn({500, 3}) * torch::tensor({2.0, 0.5, 1.0}) + torch::tensor({1.0, -3.0, 0.0});
  rows.select(1, 2).fill_(4.0);  // a constant column
  Normaliser normaliser(3);
  normaliser.fit(rows);
  const auto z = normaliser.normalise(rows);
  EXPECT_LT(z.narrow(1, 0, 2).mean(0).abs().max().item<double>(), 1e-5);
  EXPECT_LT((z.narrow(1, 0, 2).std(0, false) - 1).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(normaliser.std()[2].item<double>(), 1.0);
  EXPECT_TRUE(torch::allclose(normaliser.denormalise(z), rows, 1e-5, 1e-5));

  torch::serialize::OutputArchive out;
  normaliser.save(out, "n/");
  std::stringstream buffer;
  out.save_to(buffer);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  Normaliser loaded(3);
  loaded.load(in, "n/");
  EXPECT_TRUE(torch::equal(loaded.mean(), normaliser.mean()));
  EXPECT_TRUE(torch::equal(loaded.std(), normaliser.std()));
  buffer.seekg(0);
  torch::serialize::InputArchive again;
  again.load_from(buffer);
  Normaliser wrong(4);
  EXPECT_THROW(wrong.load(again, "n/"), tom::Error);
  EXPECT_THROW(wrong.fit(rows), tom::Error);
}

TEST_F(ModelsTest, EarlyStoppingTriggersWhenNothingIsLearnable) {
  // Targets independent of the inputs: the held-out error cannot keep improving.
  torch::manual_seed(3);
  const std::int64_t n = 2000;
  Transitions noise{torch::randn({n, kObs}), torch::randn({n, kAct}), torch::randn({n}), torch::randn({n, kObs})};
  auto settings = small_ensemble(200);
  settings.fit.patience = 5;
  ProbabilisticEnsemble model(kObs, kAct, settings, 1);
  const auto report = model.fit(noise);
  EXPECT_TRUE(report.stopped_early);
  EXPECT_LT(report.epochs, 60);
  EXPECT_EQ(report.gradient_steps, report.epochs * ((n - 400 + 127) / 128));

  settings.fit.max_epochs = 2;
  ProbabilisticEnsemble capped(kObs, kAct, settings, 1);
  const auto capped_report = capped.fit(linear_system(2000, 1));
  EXPECT_FALSE(capped_report.stopped_early);
  EXPECT_EQ(capped_report.epochs, 2);
}

TEST_F(ModelsTest, BatchCapLimitsStepsPerEpoch) {
  auto settings = small_mdn(3);
  settings.fit.max_batches_per_epoch = 4;
  MixtureDensityNetwork model(kObs, kAct, settings, 1);
  const auto report = model.fit(linear_system(2000, 1));
  EXPECT_EQ(report.gradient_steps, 4 * report.epochs);
}

TEST_F(ModelsTest, ElitesAreTheBestHeldOutMembers) {
  auto settings = small_ensemble(5);
  settings.members = 5;
  settings.elites = 2;
  ProbabilisticEnsemble model(kObs, kAct, settings, 1);
  const auto report = model.fit(linear_system(1500, 1));
  ASSERT_EQ(report.member_holdout_loss.size(), 5u);
  for (auto elite : model.elites())
    for (std::int64_t m = 0; m < 5; ++m)
      if (std::find(model.elites().begin(), model.elites().end(), m) == model.elites().end())
        EXPECT_LE(report.member_holdout_loss[elite], report.member_holdout_loss[m]);

  // A loss that scales member m by 100^-m (but is otherwise the squared error) makes the
  // last members the best, whatever the training did.
  const BatchLoss favour_last = [](const BatchLossInput& in) {
    const auto scale = torch::pow(100.0, -torch::arange(5, torch::kFloat32)).view({5, 1});
    return (in.mean - in.target).square().mean(-1) * scale;
  };
  ProbabilisticEnsemble favoured(kObs, kAct, settings, 1);
  favoured.fit(linear_system(1500, 1), {}, favour_last);
  EXPECT_EQ(favoured.elites(), (std::vector<std::int64_t>{3, 4}));
}

TEST_F(ModelsTest, CustomLossSeesRawTargetsByIndex) {
  const auto data = linear_system(800, 4);
  const auto raw_y = torch::cat({data.reward.unsqueeze(1), data.next_obs - data.obs}, 1);
  int calls = 0;
  double worst = 0.0;
  const BatchLoss squared_error = [&](const BatchLossInput& in) {
    ++calls;
    const auto expected = raw_y.index_select(0, in.indices.reshape({-1})).view(in.target.sizes());
    worst = std::max(worst, (expected - in.target).abs().max().item<double>());
    EXPECT_EQ(in.mean.sizes(), in.target.sizes());
    EXPECT_EQ(in.logvar.sizes(), in.target.sizes());
    EXPECT_EQ(in.target_scale.size(0), in.target.size(2));
    return (in.mean - in.target).square().sum(-1);
  };
  auto settings = small_mdn(20);
  MixtureDensityNetwork model(kObs, kAct, settings, 2);
  model.fit(data, {}, squared_error);
  EXPECT_GT(calls, 20);
  EXPECT_LT(worst, 1e-5);
  // Trained on the squared error of the raw mean, the mean still fits the system.
  const auto test = linear_system(300, 5);
  EXPECT_LT(rms(model.mean(test.obs, test.action).next_obs - true_mean(test.obs, test.action).next_obs), 0.06);
}

// dim_nll is each output's own NLL in normalised units: for the ensemble the Gaussian's,
// from the raw moments and the target scale; for the MDN its sum is the MDN's own
// objective, so a fit on it follows the likelihood fit step for step.
TEST_F(ModelsTest, PerDimensionNllIsTheModelsOwnLikelihood) {
  const auto data = linear_system(600, 4);
  double worst = 0.0;
  const BatchLoss gaussian_check = [&](const BatchLossInput& in) {
    const auto log_scale = in.target_scale.log();
    const auto expected = 0.5 * ((in.mean - in.target).square() * torch::exp(-in.logvar) + in.logvar -
                                 2.0 * log_scale + std::log(2.0 * std::numbers::pi));
    EXPECT_EQ(in.dim_nll.sizes(), in.target.sizes());
    worst = std::max(worst, (expected - in.dim_nll).abs().max().item<double>());
    return in.dim_nll.mean(-1);
  };
  ProbabilisticEnsemble ensemble(kObs, kAct, small_ensemble(3), 2);
  ensemble.fit(data, {}, gaussian_check);
  EXPECT_LT(worst, 1e-3);

  auto settings = small_mdn(4);
  settings.fit.patience = 10;  // no early stop: both fits run all four epochs
  MixtureDensityNetwork by_likelihood(kObs, kAct, settings, 3), by_dim_nll(kObs, kAct, settings, 3);
  by_likelihood.fit(data);
  by_dim_nll.fit(data, {}, [](const BatchLossInput& in) { return in.dim_nll.sum(-1); });
  EXPECT_TRUE(torch::allclose(by_likelihood.parameters(), by_dim_nll.parameters(), 1e-4, 1e-5));
}

TEST_F(ModelsTest, NonFiniteLossThrowsAndRestoresTheModel) {
  const auto data = linear_system(500, 4);
  ProbabilisticEnsemble model(kObs, kAct, small_ensemble(3), 2);
  model.fit(data);
  const auto before = model.parameters().clone();
  const BatchLoss poisoned = [](const BatchLossInput& in) {
    return (in.mean - in.target).square().sum(-1) * std::numeric_limits<float>::quiet_NaN();
  };
  try {
    model.fit(data, {}, poisoned);
    FAIL() << "expected tom::Error";
  } catch (const tom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(torch::equal(model.parameters(), before));
  const BatchLoss wrong_shape = [](const BatchLossInput& in) { return in.mean.sum(); };
  EXPECT_THROW(model.fit(data, {}, wrong_shape), tom::Error);
}

template <class Model, class Settings>
void expect_save_load_round_trip(Settings settings) {
  const auto data = linear_system(1000, 4);
  const auto path = (std::filesystem::temp_directory_path() / "tom_models_round_trip.pt").string();
  Model model(kObs, kAct, settings, 2);
  model.fit(data);
  model.save(path);
  Model loaded(kObs, kAct, settings, 99);
  loaded.load(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(torch::equal(model.parameters(), loaded.parameters()));
  EXPECT_EQ(model.elites(), loaded.elites());
  const auto test = linear_system(50, 5);
  EXPECT_TRUE(torch::equal(model.mean(test.obs, test.action).next_obs, loaded.mean(test.obs, test.action).next_obs));
  // Generator and optimiser state came along: the next sample and the next fit agree.
  EXPECT_TRUE(
      torch::equal(model.sample(test.obs, test.action).next_obs, loaded.sample(test.obs, test.action).next_obs));
  model.fit(data);
  loaded.fit(data);
  EXPECT_TRUE(torch::equal(model.parameters(), loaded.parameters()));
}

TEST_F(ModelsTest, SaveLoadRoundTrip) {
  expect_save_load_round_trip<ProbabilisticEnsemble>(small_ensemble(3));
  expect_save_load_round_trip<MixtureDensityNetwork>(small_mdn(3));
}

void expect_error_mentioning(const std::function<void()>& action, const std::string& fragment) {
  try {
    action();
    ADD_FAILURE() << "expected tom::Error mentioning '" << fragment << "'";
  } catch (const tom::Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST_F(ModelsTest, LoadRejectsAnotherShape) {
  const auto path = (std::filesystem::temp_directory_path() / "tom_models_shape.pt").string();
  ProbabilisticEnsemble(kObs, kAct, small_ensemble(), 1).save(path);
  auto wider = small_ensemble();
  wider.hidden_units = 32;
  ProbabilisticEnsemble other_width(kObs, kAct, wider, 1);
  expect_error_mentioning([&] { other_width.load(path); }, "hidden_units");
  ProbabilisticEnsemble other_obs(kObs + 1, kAct, small_ensemble(), 1);
  expect_error_mentioning([&] { other_obs.load(path); }, "obs_dim");
  MixtureDensityNetwork mdn(kObs, kAct, small_mdn(), 1);
  expect_error_mentioning([&] { mdn.load(path); }, "probabilistic_ensemble");
  expect_error_mentioning([&] { mdn.load(path + ".missing"); }, "cannot read");
  std::filesystem::remove(path);
}

TEST_F(ModelsTest, BadInputIsReported) {
  ProbabilisticEnsemble model(kObs, kAct, small_ensemble(2), 1);
  const auto good = linear_system(100, 1);
  auto with = [&](auto change) {
    auto data = good;
    change(data);
    return data;
  };
  expect_error_mentioning([&] { model.fit(with([](Transitions& d) { d.next_obs = d.next_obs.narrow(0, 0, 99); })); },
                          "next_obs");
  expect_error_mentioning([&] { model.fit(with([](Transitions& d) { d.action = torch::zeros({100, 2}); })); },
                          "action");
  expect_error_mentioning([&] { model.fit(with([](Transitions& d) { d.reward = d.reward.clone().index_put_({3}, NAN); })); },
                          "NaN");
  // Weights are checked where they are made (data::Weights); a fit still refuses weights of
  // another length and a resample that drew only zero-weight rows.
  const auto half_zero = data::Weights::checked(torch::tensor({0.0, 1.0}), 2, "test");
  expect_error_mentioning([&] { model.fit(good, half_zero.resampled(torch::zeros({100}, torch::kInt64))); },
                          "all zero");
  expect_error_mentioning([&] { model.fit(good, data::Weights::checked(torch::ones({99}), 99, "test")); },
                          "99 weights for 100 transitions");
  expect_error_mentioning([&] { model.sample(good.obs, torch::zeros({100, 3})); }, "action");
  expect_error_mentioning([&] { model.mean(good.obs.narrow(1, 0, 1), good.action); }, "obs");

  auto too_many_elites = small_ensemble();
  too_many_elites.elites = 4;
  expect_error_mentioning([&] { ProbabilisticEnsemble(kObs, kAct, too_many_elites); }, "elites");
  auto unknown_weighting = small_mdn();
  unknown_weighting.fit.weighting = "both";
  expect_error_mentioning([&] { MixtureDensityNetwork(kObs, kAct, unknown_weighting); }, "weighting");
}

TEST_F(ModelsTest, SampleStepAppliesTerminationRule) {
  MixtureDensityNetwork model(kObs, kAct, small_mdn(2), 1);
  const auto data = linear_system(64, 1);
  const TerminationFn above_zero = [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next) {
    return next.select(1, 0) > 0;
  };
  const auto step = sample_step(model, data.obs, data.action, above_zero);
  EXPECT_TRUE(torch::equal(step.terminated, step.next_obs.select(1, 0) > 0));
  EXPECT_EQ(step.reward.sizes(), (std::vector<std::int64_t>{64}));
  const TerminationFn broken = [](const torch::Tensor& obs, const torch::Tensor&, const torch::Tensor&) {
    return obs;
  };
  EXPECT_THROW(sample_step(model, data.obs, data.action, broken), tom::Error);
}

}  // namespace
}  // namespace tom::models
