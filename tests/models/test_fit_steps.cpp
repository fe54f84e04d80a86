// The steps of DynamicsModel::fit on their own: the epoch sampler (batches per epoch,
// weighted resampling frequencies, a fit's own epoch form), the early-stopping rule on
// scripted scores, the MDN's learned variance floor, and the expected (mean) model step.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>
#include <tuple>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/models/ensemble.hpp"
#include "tom/models/mdn.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::models {
namespace {

FitSettings sampler_settings(const std::string& epoch, const std::string& weighting, int max_batches) {
  FitSettings s;
  s.epoch = epoch;
  s.weighting = weighting;
  s.batch_size = 256;
  s.max_batches_per_epoch = max_batches;
  return s;
}

TEST(EpochSampler, BatchesPerEpoch) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto ones = [](std::int64_t n) { return torch::ones({n}); };
  // pass: one shuffled pass, capped: min(ceil(n / 256), cap).
  EXPECT_EQ(EpochSampler(sampler_settings("pass", "loss", 100), 1, 1000, ones(1000), false, gen).steps(), 4);
  EXPECT_EQ(EpochSampler(sampler_settings("pass", "loss", 100), 1, 60000, ones(60000), false, gen).steps(), 100);
  EXPECT_EQ(EpochSampler(sampler_settings("pass", "loss", 0), 1, 60000, ones(60000), false, gen).steps(), 235);
  // draw (the TOM authors' code): always max_batches_per_epoch batches, however few rows.
  const EpochSampler draw(sampler_settings("draw", "loss", 100), 1, 1000, ones(1000), false, gen);
  EXPECT_EQ(draw.steps(), 100);
  const auto rows = draw.next(gen);
  EXPECT_EQ(rows.sizes(), torch::IntArrayRef({1, 100 * 256}));
  EXPECT_GE(rows.min().item<std::int64_t>(), 0);
  EXPECT_LT(rows.max().item<std::int64_t>(), 1000);
  // With replacement: 25600 draws from 1000 rows repeat rows.
  EXPECT_LT(std::get<0>(torch::_unique(rows.flatten())).size(0), 1000 + 1);
  EXPECT_GT(rows.numel(), 1000);
  // A pass visits every row exactly once per member.
  const EpochSampler pass(sampler_settings("pass", "loss", 0), 2, 700, ones(700), false, gen);
  const auto visited = pass.next(gen);
  for (int m = 0; m < 2; ++m) EXPECT_TRUE(torch::equal(std::get<0>(visited[m].sort()), torch::arange(700)));
}

// pass-drop-last (the TOM code's VaGraM fit, vaml.py:102-129): each epoch takes
// min(100, floor(n / 256)) whole batches of a shuffled pass, no row twice.
TEST(EpochSampler, PassDropLastTakesWholeBatchesWithoutReplacement) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto ones = [](std::int64_t n) { return torch::ones({n}); };
  const auto steps = [&](std::int64_t n, int cap) {
    return EpochSampler(sampler_settings("pass-drop-last", "loss", cap), 1, n, ones(n), false, gen).steps();
  };
  EXPECT_EQ(steps(1000, 100), 3);     // floor(1000 / 256) = 3; "pass" takes 4
  EXPECT_EQ(steps(4000, 100), 15);    // the first fit after 5000 exploration steps: 4000 training rows
  EXPECT_EQ(steps(25599, 100), 99);   // "pass" takes 100
  EXPECT_EQ(steps(25600, 100), 100);
  EXPECT_EQ(steps(60000, 100), 100);
  EXPECT_EQ(steps(60000, 0), 234);    // no cap: one pass, the last partial batch left out
  EXPECT_EQ(steps(100, 100), 1);      // fewer rows than a batch: one batch of them all
  EXPECT_EQ(EpochSampler(sampler_settings("pass", "loss", 100), 1, 25599, ones(25599), false, gen).steps(), 100);
  // Without replacement: the epoch's 3 x 256 rows are distinct rows of [0, 1000), and the
  // next epoch is another shuffle.
  const EpochSampler sampler(sampler_settings("pass-drop-last", "loss", 100), 1, 1000, ones(1000), false, gen);
  const auto first = sampler.next(gen), second = sampler.next(gen);
  ASSERT_GE(first.size(1), 3 * 256);
  const auto used = first[0].narrow(0, 0, 3 * 256);
  EXPECT_EQ(std::get<0>(torch::_unique(used)).size(0), 3 * 256);
  EXPECT_GE(used.min().item<std::int64_t>(), 0);
  EXPECT_LT(used.max().item<std::int64_t>(), 1000);
  EXPECT_FALSE(torch::equal(first, second));
}

// A fit's own epoch form (a plan's, for VaGraM) replaces the model's setting for that fit
// alone: 210 rows, 42 held out, 168 to train on in batches of 16.
TEST(EpochSampler, AFitMayOverrideTheEpochForm) {
  set_threads(1);
  MdnSettings settings;
  settings.hidden_layers = 1;
  settings.hidden_units = 8;
  settings.fit.epoch = "draw";
  settings.fit.batch_size = 16;
  settings.fit.max_batches_per_epoch = 100;
  settings.fit.max_epochs = 2;
  settings.fit.patience = 5;  // no early stop: both epochs run
  torch::manual_seed(2);
  const auto obs = torch::randn({210, 2});
  const Transitions data{obs, torch::rand({210, 1}), torch::randn({210}), obs + 0.1 * torch::randn({210, 2})};
  MixtureDensityNetwork model(2, 1, settings, 0);
  EXPECT_EQ(model.fit(data).gradient_steps, 2 * 100);                                   // the setting: draw 100
  EXPECT_EQ(model.fit(data, {}, nullptr, 0.0, "pass-drop-last").gradient_steps, 2 * 10);  // floor(168 / 16)
  EXPECT_EQ(model.fit(data, {}, nullptr, 0.0, "pass").gradient_steps, 2 * 11);            // ceil(168 / 16)
  EXPECT_EQ(model.fit(data).gradient_steps, 2 * 100);                                   // the next fit: the setting
  EXPECT_THROW(model.fit(data, {}, nullptr, 0.0, "pass-floor"), Error);
}

TEST(EpochSampler, WeightedResamplingFollowsTheWeights) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  // Four rows with weights 0, 1, 2, 5 (mean 2): drawn with probabilities 0, 1/8, 2/8, 5/8.
  const auto w = torch::tensor({0.0, 1.0, 2.0, 5.0}, torch::kFloat32);
  const EpochSampler sampler(sampler_settings("draw", "sample", 200), 1, 4, w, false, gen);
  const auto rows = sampler.next(gen).flatten();
  const auto counts = torch::bincount(rows, {}, 4).to(torch::kFloat64) / static_cast<double>(rows.numel());
  EXPECT_EQ(counts[0].item<double>(), 0.0);
  EXPECT_NEAR(counts[1].item<double>(), 1.0 / 8, 0.01);
  EXPECT_NEAR(counts[2].item<double>(), 2.0 / 8, 0.01);
  EXPECT_NEAR(counts[3].item<double>(), 5.0 / 8, 0.01);
  // A weighted "pass" draws its one batch by weight too: never the zero-weight row.
  const EpochSampler pass(sampler_settings("pass", "sample", 0), 1, 4, w, false, gen);
  EXPECT_EQ((pass.next(gen) == 0).sum().item<std::int64_t>(), 0);
  // In loss mode the weights scale the loss instead: draws stay uniform.
  const EpochSampler uniform(sampler_settings("draw", "loss", 200), 1, 4, w, false, gen);
  const auto uniform_counts = torch::bincount(uniform.next(gen).flatten(), {}, 4).to(torch::kFloat64) / (200.0 * 256);
  for (int r = 0; r < 4; ++r) EXPECT_NEAR(uniform_counts[r].item<double>(), 0.25, 0.01);
}

TEST(EarlyStopping, StopsAfterPatienceEpochsWithoutARelativeImprovement) {
  // The authors' rule: an epoch counts when it improves the best score by more than 1 %
  // (relative); stop when 6 epochs in a row do not (their "epochs_since_update > 5").
  EarlyStopping stopping(1, 6, 0.01);
  const std::vector<double> scores{10.0, 9.0, 8.95, 8.0, 7.99, 7.98, 7.97, 7.96, 7.95, 7.94};
  std::vector<bool> stop;
  for (double s : scores) stop.push_back(stopping.update({s}));
  // Improvements at 10 (first), 9, 8; then 7.99..7.94 are all within 1 % of 8: the sixth
  // of those (the 10th score) stops.
  for (std::size_t i = 0; i + 1 < scores.size(); ++i) EXPECT_FALSE(stop[i]) << "score " << i;
  EXPECT_TRUE(stop.back());
  // Negative scores (NLL can be negative) improve relative to |best|.
  EarlyStopping negative(1, 1, 0.01);
  EXPECT_FALSE(negative.update({-1.0}));
  EXPECT_FALSE(negative.update({-1.02}));  // 2 % better
  EXPECT_TRUE(negative.update({-1.025}));  // 0.5 % better: not enough
  // Any member improving keeps training going.
  EarlyStopping members(2, 1, 0.01);
  EXPECT_FALSE(members.update({1.0, 1.0}));
  EXPECT_FALSE(members.update({1.0, 0.5}));
  EXPECT_TRUE(members.update({1.0, 0.5}));
}

TEST(Mdn, LearnedVarianceFloorStartsAtLog2AndIsTrained) {
  set_threads(1);
  MdnSettings settings;
  settings.hidden_layers = 1;
  settings.hidden_units = 16;
  settings.components = 2;
  settings.variance_floor = "learned";
  settings.fit.max_epochs = 3;
  settings.fit.batch_size = 64;
  MixtureDensityNetwork model(2, 1, settings, 0);
  const auto floor_parameter = [&] { return model.parameters()[-1].item<double>(); };
  EXPECT_EQ(floor_parameter(), 0.0);  // softplus(0) = log 2 in normalised units
  torch::manual_seed(0);
  const auto obs = torch::randn({400, 2});
  model.fit({obs, torch::rand({400, 1}), torch::randn({400}), obs + 0.01 * torch::randn({400, 2})});
  EXPECT_NE(floor_parameter(), 0.0);  // it gets a gradient
  // The data's noise is far below log 2 normalised: the floor must come down.
  EXPECT_LT(floor_parameter(), 0.0);
}

TEST(ModelStep, ExpectedStepIsTheModelMean) {
  set_threads(1);
  MdnSettings settings;
  settings.hidden_layers = 1;
  settings.hidden_units = 8;
  MixtureDensityNetwork model(2, 1, settings, 0);
  const auto obs = torch::randn({5, 2}), action = torch::rand({5, 1});
  const TerminationFn never = [](const torch::Tensor& o, const torch::Tensor&, const torch::Tensor&) {
    return torch::zeros({o.size(0)}, torch::kBool);
  };
  const auto expected = sample_step(model, obs, action, never, /*sample=*/false);
  const auto mean = model.mean(obs, action);
  EXPECT_TRUE(torch::equal(expected.next_obs, mean.next_obs));
  EXPECT_TRUE(torch::equal(expected.reward, mean.reward));
  const auto sampled = sample_step(model, obs, action, never);
  EXPECT_FALSE(torch::equal(sampled.next_obs, mean.next_obs));
}

// A gradient step's two halves run on two threads with 2+ threads; the fitted models
// (parameters, optimiser state, elites, figures) are bit-identical to 1 thread, with the
// likelihood loss and with a custom batch loss (called from both threads at once).
template <class Model, class Settings>
void expect_fit_independent_of_threads(Settings settings, bool custom_loss) {
  settings.fit.max_epochs = 3;
  settings.fit.max_batches_per_epoch = 6;
  torch::manual_seed(5);
  const std::int64_t n = 2000;
  const auto obs = torch::randn({n, 11}), action = torch::rand({n, 3}) * 2 - 1;
  const Transitions data{obs, action, torch::randn({n}), obs + 0.1 * torch::randn({n, 11})};
  const auto weights = data::Weights::checked(torch::rand({n}) + 0.5, n, "test weights");
  const BatchLoss loss = [](const BatchLossInput& in) { return (in.mean - in.target).square().mean(2); };
  const auto fit = [&](int threads) {
    set_threads(threads);
    Model model(11, 3, settings, /*seed=*/7);
    const FitReport report = model.fit(data, weights, custom_loss ? loss : nullptr);
    set_threads(1);
    torch::serialize::OutputArchive archive;
    model.save(archive);
    std::ostringstream bytes;
    archive.save_to(bytes);
    return std::tuple{report.train_nll, report.holdout_mse, report.member_holdout_loss, model.elites(), bytes.str()};
  };
  EXPECT_TRUE(fit(1) == fit(2));
}

TEST(FitThreads, EnsembleFitIsBitIdenticalOnOneAndTwoThreads) {
  EnsembleSettings settings;
  settings.members = 3;
  settings.elites = 2;
  expect_fit_independent_of_threads<ProbabilisticEnsemble>(settings, false);
  expect_fit_independent_of_threads<ProbabilisticEnsemble>(settings, true);
}

TEST(FitThreads, MdnFitIsBitIdenticalOnOneAndTwoThreads) {
  expect_fit_independent_of_threads<MixtureDensityNetwork>(MdnSettings{}, false);
  expect_fit_independent_of_threads<MixtureDensityNetwork>(MdnSettings{}, true);
}

TEST(FitThreads, InBf16BothModelsFitBitIdenticallyOnOneAndTwoThreads) {
  if (!nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16";
  const nn::MatmulPrecisionScope in_bf16(nn::Precision::bf16);
  EnsembleSettings ensemble;
  ensemble.members = 3;
  ensemble.elites = 2;
  for (const bool custom_loss : {false, true}) {
    expect_fit_independent_of_threads<ProbabilisticEnsemble>(ensemble, custom_loss);
    expect_fit_independent_of_threads<MixtureDensityNetwork>(MdnSettings{}, custom_loss);
  }
}

}  // namespace
}  // namespace tom::models
