// VaGraM: value gradients against per-row autograd, the quantile clip, both forms' batch
// losses (values on hand-made tensors and one worked by hand, gradients against
// autograd), plan() on a real SAC agent (its warm-up term switching off after the first
// epoch), and short ensemble and MDN fits.
#include <gtest/gtest.h>

#include "../support.hpp"

#include "tom/agents/sac.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/models/ensemble.hpp"
#include "tom/models/mdn.hpp"
#include "tom/objectives/vagram_objective.hpp"

namespace tom::objectives {
namespace {

constexpr int kObs = 3, kAct = 2;

agents::SacSettings small_sac() {
  agents::SacSettings s;
  s.hidden_size = 16;
  s.batch_size = 16;
  return s;
}

// A SAC agent whose target critics differ from the online ones (one update), and a
// replay buffer of random transitions.
struct Fixture {
  agents::Sac sac{small_sac(), kObs, kAct, {-1.0, -2.0}, {1.0, 2.0}, torch::kCPU, 3};
  data::ReplayBuffer replay{100, kObs, kAct};
  Fixture(std::int64_t n = 40) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    replay.add_batch(torch::randn({n, kObs}, gen), torch::rand({n, kAct}, gen) * 2 - 1, torch::randn({n}, gen),
                     torch::randn({n, kObs}, gen), (torch::rand({n}, gen) < 0.1).to(torch::kFloat32));
    for (int i = 0; i < 3; ++i) sac.update(replay.sample(16, gen));
  }
};

// The published form, row by row: mean over critics and state dimensions of (g_v,i e_i)^2,
// plus e_r^2, plus the mean of e_j^2 over all outputs when add_mse.
torch::Tensor definition_loss(const torch::Tensor& g /*[4,N,O]*/, const torch::Tensor& mean,
                              const torch::Tensor& target, const torch::Tensor& indices, bool add_mse = false) {
  auto out = torch::zeros({mean.size(0), mean.size(1)}, torch::kFloat64);
  for (std::int64_t m = 0; m < mean.size(0); ++m)
    for (std::int64_t b = 0; b < mean.size(1); ++b) {
      const auto row = indices[m][b].item<std::int64_t>();
      const auto e = (mean[m][b] - target[m][b]).to(torch::kFloat64);
      double total = 0;
      for (std::int64_t v = 0; v < g.size(0); ++v)
        total += (g[v][row].to(torch::kFloat64) * e.narrow(0, 1, e.size(0) - 1)).square().sum().item<double>();
      double row_loss = total / static_cast<double>(g.size(0) * g.size(2)) + e[0].item<double>() * e[0].item<double>();
      if (add_mse) row_loss += e.square().mean().item<double>();
      out[m][b] = row_loss;
    }
  return out;
}

// The weighted-NLL form, row by row: mean over the O state dimensions i of
// mean_v |g_v,i| scale_i nll_i, plus nll_r, plus the mean of nll_j over all outputs when
// add_nll.
torch::Tensor definition_weighted_nll(const torch::Tensor& g /*[4,N,O]*/, const torch::Tensor& dim_nll,
                                      const torch::Tensor& scale, const torch::Tensor& indices, bool add_nll = false) {
  auto out = torch::zeros({dim_nll.size(0), dim_nll.size(1)}, torch::kFloat64);
  for (std::int64_t m = 0; m < dim_nll.size(0); ++m)
    for (std::int64_t b = 0; b < dim_nll.size(1); ++b) {
      const auto row = indices[m][b].item<std::int64_t>();
      double state = 0;
      for (std::int64_t i = 0; i < g.size(2); ++i) {
        double magnitude = 0;
        for (std::int64_t v = 0; v < g.size(0); ++v) magnitude += std::abs(g[v][row][i].item<double>());
        magnitude /= static_cast<double>(g.size(0));
        state += magnitude * scale[1 + i].item<double>() * dim_nll[m][b][1 + i].item<double>();
      }
      double total = state / static_cast<double>(g.size(2)) + dim_nll[m][b][0].item<double>();
      if (add_nll) total += dim_nll[m][b].to(torch::kFloat64).mean().item<double>();
      out[m][b] = total;
    }
  return out;
}

TEST(Vagram, GradientsMatchPerRowAutograd) {
  set_threads(1);
  Fixture f;
  const auto next_obs = f.replay.all().next_obs;
  const auto next_action = mean_next_actions(f.sac, next_obs, 7);
  // The policy's mean action, as pairlab/vagram and the TOM code take.
  EXPECT_TRUE(torch::allclose(next_action, f.sac.act(next_obs, /*deterministic=*/true)));
  ASSERT_EQ(next_action.sizes(), (std::vector<std::int64_t>{40, kAct}));
  const auto g = value_gradients(f.sac, next_obs, next_action, 7);
  ASSERT_EQ(g.sizes(), (std::vector<std::int64_t>{4, 40, kObs}));
  for (std::int64_t row : {0, 13, 39}) {
    for (int v = 0; v < 4; ++v) {
      const auto s = next_obs[row].unsqueeze(0).clone().requires_grad_(true);
      const auto a = next_action[row].unsqueeze(0);
      const auto q = v < 2 ? f.sac.q_values(s, a) : f.sac.target_q_values(s, a);
      const auto expected = torch::autograd::grad({(v % 2 == 0 ? q.q1 : q.q2).sum()}, {s})[0][0];
      EXPECT_TRUE(torch::allclose(g[v][row], expected, 1e-5, 1e-6)) << "row " << row << " critic " << v;
    }
  }
  EXPECT_GT(g.abs().max().item<double>(), 0.0);
  EXPECT_FALSE(torch::allclose(g[0], g[1]));  // the two critics differ
  EXPECT_FALSE(torch::equal(g[0], g[2]));     // online and target differ after updates
  // Chunking does not change the result, nor does an outer NoGradGuard.
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::allclose(value_gradients(f.sac, next_obs, next_action, 1000), g, 1e-6, 1e-7));
}

TEST(Vagram, ClipsEachCriticAtItsQuantile) {
  // Critic 0: rows (k, 0) with norms 1..5 and a zero row; critic 1: rows (0, 10 k).
  auto g = torch::zeros({2, 6, 2});
  for (int k = 1; k <= 5; ++k) {
    g[0][k][0] = static_cast<float>(k);
    g[1][k][1] = static_cast<float>(10 * k);
  }
  g[1][0][0] = 3.0f;
  g[1][0][1] = 4.0f;  // norm 5
  const auto half = clip_gradient_norms(g, 0.5);
  // Norms critic 0: {0,1,2,3,4,5} -> median 2.5; critic 1: {5,10,20,30,40,50} -> 25.
  EXPECT_NEAR(half.thresholds[0].item<double>(), 2.5, 1e-9);
  EXPECT_NEAR(half.thresholds[1].item<double>(), 25.0, 1e-9);
  const auto norms = half.gradients.norm(2, {2});
  EXPECT_TRUE(torch::allclose(norms[0], torch::tensor({0.0f, 1.0f, 2.0f, 2.5f, 2.5f, 2.5f})));
  EXPECT_TRUE(torch::allclose(norms[1], torch::tensor({5.0f, 10.0f, 20.0f, 25.0f, 25.0f, 25.0f})));
  EXPECT_TRUE(torch::equal(half.gradients[0][0], torch::zeros({2})));
  EXPECT_NEAR(half.gradients[1][0][0].item<double>() / half.gradients[1][0][1].item<double>(), 0.75, 1e-6);
  EXPECT_EQ(half.gradients[1][5][0].item<double>(), 0.0);  // direction kept
  // Interpolated quantile, as torch::quantile.
  const auto high = clip_gradient_norms(g, 0.95);
  const auto expected = torch::quantile(g.to(torch::kFloat64).norm(2, {2}), 0.95, 1);
  EXPECT_TRUE(torch::allclose(high.thresholds, expected));
  EXPECT_TRUE(torch::equal(clip_gradient_norms(g, 1.0).gradients, g));  // the max: nothing clipped
  EXPECT_THROW(clip_gradient_norms(torch::zeros({2, 0, 2}), 0.5), Error);
}

TEST(Vagram, PublishedBatchLossFormula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const std::int64_t n = 5;
  auto g = torch::randn({4, n, kObs}, gen);
  g.select(2, 1).zero_();  // no critic's value depends on obs dimension 1
  const auto loss = vagram_batch_loss(g.square().mean(0), /*add_mse=*/false);
  const auto mean = torch::randn({2, 3, 1 + kObs}, gen), target = torch::randn({2, 3, 1 + kObs}, gen);
  const auto logvar = torch::randn({2, 3, 1 + kObs}, gen), nll = torch::randn({2, 3, 1 + kObs}, gen);
  const auto scale = torch::rand({1 + kObs}, gen) + 0.5;
  const auto indices = torch::tensor({0, 4, 2, 1, 1, 3}, torch::kInt64).view({2, 3});
  const auto out = loss({mean, logvar, target, indices, nll, scale});
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), definition_loss(g, mean, target, indices), 1e-5, 1e-6));
  // The likelihood parts do not matter.
  const auto other_logvar = logvar + 3.0, other_nll = nll * 2.0;
  EXPECT_TRUE(torch::equal(loss({mean, other_logvar, target, indices, other_nll, scale}), out));
  // Errors in a dimension without value gradient cost nothing; elsewhere they do.
  auto shifted = mean.clone();
  shifted.select(2, 2) += 5.0;  // y index 2 = obs dimension 1
  EXPECT_TRUE(torch::allclose(loss({shifted, logvar, target, indices, nll, scale}), out));
  shifted = mean.clone();
  shifted.select(2, 1) += 5.0;  // obs dimension 0
  EXPECT_GT((loss({shifted, logvar, target, indices, nll, scale}) - out).abs().min().item<double>(), 0.0);
  shifted = mean.clone();
  shifted.select(2, 0) += 1.0;  // the reward error always counts
  EXPECT_GT((loss({shifted, logvar, target, indices, nll, scale}) - out).abs().min().item<double>(), 0.0);
  // The warm-up adds the mean squared error of every output.
  const auto warm = vagram_batch_loss(g.square().mean(0), /*add_mse=*/true);
  EXPECT_TRUE(torch::allclose(warm({mean, logvar, target, indices, nll, scale}).to(torch::kFloat64),
                              definition_loss(g, mean, target, indices, true), 1e-5, 1e-6));
  // Bad input.
  const auto bad_rows = torch::tensor({0, 5, 2, 1, 1, 3}, torch::kInt64).view({2, 3});
  EXPECT_THROW(loss({mean, logvar, target, bad_rows, nll, scale}), Error);
  const auto wide = torch::zeros({2, 3, 2 + kObs});
  EXPECT_THROW(loss({wide, wide, wide, indices, wide, scale}), Error);
  EXPECT_THROW(vagram_batch_loss(torch::zeros({0, 3}), false), Error);
}

TEST(Vagram, WeightedNllBatchLossFormula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const std::int64_t n = 5;
  auto g = torch::randn({4, n, kObs}, gen);
  g.select(2, 2).zero_();  // no critic's value depends on obs dimension 2
  const auto loss = vagram_weighted_nll_loss(g.abs().mean(0), /*add_nll=*/false);
  const auto mean = torch::randn({2, 3, 1 + kObs}, gen), target = torch::randn({2, 3, 1 + kObs}, gen);
  const auto nll = torch::randn({2, 3, 1 + kObs}, gen), scale = torch::rand({1 + kObs}, gen) + 0.5;
  const auto indices = torch::tensor({4, 0, 2, 3, 1, 3}, torch::kInt64).view({2, 3});
  const auto out = loss({mean, mean, target, indices, nll, scale});
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), definition_weighted_nll(g, nll, scale, indices), 1e-5, 1e-6));
  // The reward's likelihood always counts in full; a dimension without value gradient not at all.
  auto shifted = nll.clone();
  shifted.select(2, 0) += 1.0;
  EXPECT_TRUE(torch::allclose(loss({mean, mean, target, indices, shifted, scale}), out + 1.0));
  shifted = nll.clone();
  shifted.select(2, 3) += 5.0;  // y index 3 = obs dimension 2
  EXPECT_TRUE(torch::allclose(loss({mean, mean, target, indices, shifted, scale}), out));
  // The warm-up adds the mean NLL of all 1 + O outputs: the reward's NLL then counts
  // 1 + 1 / (1 + O), and the dimension without value gradient 1 / (1 + O).
  const auto warm = vagram_weighted_nll_loss(g.abs().mean(0), /*add_nll=*/true);
  const auto warm_out = warm({mean, mean, target, indices, nll, scale});
  EXPECT_TRUE(torch::allclose(warm_out.to(torch::kFloat64), definition_weighted_nll(g, nll, scale, indices, true),
                              1e-5, 1e-6));
  shifted = nll.clone();
  shifted.select(2, 0) += 1.0;
  EXPECT_TRUE(torch::allclose(warm({mean, mean, target, indices, shifted, scale}), warm_out + 1.0 + 1.0 / (1 + kObs)));
  shifted = nll.clone();
  shifted.select(2, 3) += 4.0;
  EXPECT_TRUE(torch::allclose(warm({mean, mean, target, indices, shifted, scale}), warm_out + 4.0 / (1 + kObs)));
  // Missing or misshapen likelihood inputs are errors.
  EXPECT_THROW(loss({mean, mean, target, indices, torch::Tensor(), scale}), Error);
  EXPECT_THROW(loss({mean, mean, target, indices, nll, torch::ones({kObs})}), Error);
}

// The tom-paper form by hand, with O = 2 state dimensions: per row
// (1/2) sum_i w_i nll_i + nll_r, w_i = mean over critics of |g_v,i| times scale_i (as
// vaml.py's loss.mean() over [B, O] with the reward's NLL broadcast), and with the
// first-epoch term the mean of the three NLLs (vaml.py:177-179).
TEST(Vagram, TomPaperRowLossByHand) {
  // Four critics' gradients [4, 2 transitions, 2 dims]. Transition 0: |g| means 2 and 0.5;
  // transition 1: 1 and 4 (signs do not matter).
  const auto g = torch::tensor({2.0f, 0.5f, -1.0f, 4.0f,     //
                                -2.0f, -0.5f, 1.0f, 4.0f,    //
                                1.0f, 0.5f, -1.0f, -4.0f,    //
                                -3.0f, -0.5f, 1.0f, 4.0f})
                     .view({4, 2, 2});
  const auto scale = torch::tensor({3.0f, 0.5f, 4.0f});  // reward (unused), then the state dimensions
  // Weights: transition 0: 2 x 0.5 = 1, 0.5 x 4 = 2; transition 1: 1 x 0.5 = 0.5, 4 x 4 = 16.
  const auto indices = torch::tensor({1, 0}, torch::kInt64).view({1, 2});
  const auto nll = torch::tensor({0.3f, 1.2f, 0.4f,      // transition 1: [reward, s0, s1]
                                  -0.2f, 2.0f, -0.5f})  // transition 0
                       .view({1, 2, 3});
  const auto zeros = torch::zeros({1, 2, 3});
  const auto after = vagram_weighted_nll_loss(g.abs().mean(0), false)({zeros, zeros, zeros, indices, nll, scale});
  // (0.5 x 1.2 + 16 x 0.4) / 2 + 0.3 = 3.8 and (1 x 2.0 + 2 x -0.5) / 2 - 0.2 = 0.3 (the
  // sum over dimensions would give 7.3 and 0.8).
  EXPECT_NEAR(after[0][0].item<double>(), 3.8, 1e-6);
  EXPECT_NEAR(after[0][1].item<double>(), 0.3, 1e-6);
  // First epoch: + (0.3 + 1.2 + 0.4) / 3 and + (-0.2 + 2.0 - 0.5) / 3.
  const auto first = vagram_weighted_nll_loss(g.abs().mean(0), true)({zeros, zeros, zeros, indices, nll, scale});
  EXPECT_NEAR(first[0][0].item<double>(), 3.8 + 1.9 / 3, 1e-6);
  EXPECT_NEAR(first[0][1].item<double>(), 0.3 + 1.3 / 3, 1e-6);
}

// Both losses' gradients, from autograd, against their closed forms: the published form
// d/dmean_i = 2 h_i e_i / O (state), 2 e_r (reward); the weighted NLL d/dnll_i =
// m_i scale_i / O (state), 1 (reward). Neither passes any gradient to the other inputs.
TEST(Vagram, BothLossesGradientsMatchTheirClosedForms) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const std::int64_t n = 4;
  const auto h = torch::rand({n, kObs}, gen), m = torch::rand({n, kObs}, gen);
  const auto target = torch::randn({1, 6, 1 + kObs}, gen), scale = torch::rand({1 + kObs}, gen) + 0.5;
  const auto indices = torch::tensor({3, 0, 2, 2, 1, 0}, torch::kInt64).view({1, 6});
  const auto rows_h = h.index_select(0, indices[0]), rows_m = m.index_select(0, indices[0]);

  const auto mean = torch::randn({1, 6, 1 + kObs}, gen).requires_grad_(true);
  const auto logvar = torch::randn({1, 6, 1 + kObs}, gen).requires_grad_(true);
  const auto nll = torch::randn({1, 6, 1 + kObs}, gen).requires_grad_(true);
  vagram_batch_loss(h, false)({mean, logvar, target, indices, nll, scale}).sum().backward();
  const auto e = (mean - target).detach()[0];
  auto expected = torch::empty_like(e);
  expected.select(1, 0).copy_(2.0 * e.select(1, 0));
  expected.narrow(1, 1, kObs).copy_(2.0 * rows_h * e.narrow(1, 1, kObs) / double(kObs));
  EXPECT_TRUE(torch::allclose(mean.grad()[0], expected, 1e-5, 1e-6));
  EXPECT_FALSE(logvar.grad().defined());
  EXPECT_FALSE(nll.grad().defined());

  mean.mutable_grad() = torch::Tensor();
  vagram_weighted_nll_loss(m, false)({mean, logvar, target, indices, nll, scale}).sum().backward();
  auto expected_nll = torch::empty({6, 1 + kObs});
  expected_nll.select(1, 0).fill_(1.0);
  expected_nll.narrow(1, 1, kObs).copy_(rows_m * scale.narrow(0, 1, kObs) / double(kObs));
  EXPECT_TRUE(torch::allclose(nll.grad()[0], expected_nll, 1e-6, 1e-7));
  EXPECT_FALSE(mean.grad().defined());
  EXPECT_FALSE(logvar.grad().defined());
}

TEST(Vagram, PlanMatchesTheDefinition) {
  set_threads(1);
  Fixture f;
  VagramObjective vagram({});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  // After the warm-up (env steps 2000 >= 0 + 1000): no squared-error term.
  const auto plan = vagram.plan({f.replay, every_view(f.sac), 2000, 0, gen});
  EXPECT_FALSE(plan.fit_weights.values().defined());  // uniform
  EXPECT_FALSE(plan.trains_distribution);   // the loss shapes the mean only: rollouts use the mean
  EXPECT_EQ(plan.epoch, "");                // the model's own epoch setting
  ASSERT_TRUE(plan.loss);
  // Mean actions, gradients clipped at the 0.95 quantile.
  const auto next_obs = f.replay.all().next_obs;
  const auto actions = mean_next_actions(f.sac, next_obs, vagram.settings().chunk);
  const auto raw = value_gradients(f.sac, next_obs, actions, 5);
  const auto clipped = clip_gradient_norms(raw, 0.95);
  ASSERT_EQ(vagram.thresholds().size(), 4u);
  // (float32 gradients: other chunk sizes change the last bits)
  for (int v = 0; v < 4; ++v)
    EXPECT_NEAR(vagram.thresholds()[v], clipped.thresholds[v].item<double>(), 1e-5 * vagram.thresholds()[v]);
  EXPECT_LT(clipped.gradients.norm(2, {2}).max().item<double>(), raw.norm(2, {2}).max().item<double>());

  auto rng = at::make_generator<at::CPUGeneratorImpl>(10);
  const auto mean = torch::randn({3, 8, 1 + kObs}, rng), target = torch::randn({3, 8, 1 + kObs}, rng);
  const auto indices = torch::randint(40, {3, 8}, rng, torch::kInt64);
  const auto zeros = torch::zeros_like(mean), ones = torch::ones({1 + kObs});
  const auto out = plan.loss({mean, zeros, target, indices, zeros, ones});
  EXPECT_TRUE(
      torch::allclose(out.to(torch::kFloat64), definition_loss(clipped.gradients, mean, target, indices), 1e-5, 1e-6));
  // Within the first 1000 steps after exploration the squared error is added.
  const auto warm = vagram.plan({f.replay, every_view(f.sac), 1500, 600, gen});
  EXPECT_TRUE(torch::allclose(warm.loss({mean, zeros, target, indices, zeros, ones}).to(torch::kFloat64),
                              definition_loss(clipped.gradients, mean, target, indices, true), 1e-5, 1e-6));
  // The weighted-NLL form: mean |g| per dimension, and the plan trains the distribution.
  VagramSettings port;
  port.form = "weighted-nll";
  VagramObjective weighted(port);
  const auto weighted_plan = weighted.plan({f.replay, every_view(f.sac), 2000, 0, gen});
  EXPECT_TRUE(weighted_plan.trains_distribution);
  EXPECT_EQ(weighted_plan.epoch, "");
  const auto nll = torch::rand({3, 8, 1 + kObs}, rng), scale = torch::rand({1 + kObs}, rng) + 0.5;
  EXPECT_TRUE(torch::allclose(weighted_plan.loss({mean, zeros, target, indices, nll, scale}).to(torch::kFloat64),
                              definition_weighted_nll(clipped.gradients, nll, scale, indices), 1e-5, 1e-6));
  // With the unclipped gradients the loss differs on some row (the clip is applied).
  const auto every_row = torch::arange(40, torch::kInt64).view({1, 40});
  const auto mean_all = torch::randn({1, 40, 1 + kObs}, rng), target_all = torch::randn({1, 40, 1 + kObs}, rng);
  EXPECT_FALSE(torch::allclose(definition_loss(raw, mean_all, target_all, every_row),
                               definition_loss(clipped.gradients, mean_all, target_all, every_row), 1e-5, 1e-6));

  const auto values = tom::test::figures_of(vagram).values();
  ASSERT_EQ(values.size(), tom::test::figures_of(vagram).names().size());
  EXPECT_NEAR(values[0], raw.to(torch::kFloat64).norm(2, {2}).mean().item<double>(), 1e-6);
  EXPECT_NEAR(values[1], clipped.thresholds.mean().item<double>(), 1e-5 * values[1]);

  data::ReplayBuffer empty(10, kObs, kAct);
  EXPECT_THROW(vagram.plan({empty, every_view(f.sac), 0, 0, gen}), Error);
  VagramSettings bad;
  bad.quantile = 1.5;
  EXPECT_THROW(VagramObjective{bad}, Error);
  bad = {};
  bad.form = "taylor";
  EXPECT_THROW(VagramObjective{bad}, Error);
}

// The tom-paper settings: the mean NLL is added in the fits of the first epoch after
// exploration (env steps 5000 to 5999: add_mse is on from mbpo.py:451 until the end of
// epoch 0, mbpo.py:249-250) and never after; the plan asks for whole batches of a
// shuffled pass.
TEST(Vagram, FirstEpochNllSwitchesOffAfterTheFirstEpoch) {
  set_threads(1);
  Fixture f;
  VagramSettings settings;
  settings.form = "weighted-nll";
  settings.mse_warmup_steps = 1000;
  settings.epoch = "pass-drop-last";
  VagramObjective vagram(settings);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(13);
  auto rng = at::make_generator<at::CPUGeneratorImpl>(14);
  const auto mean = torch::randn({1, 8, 1 + kObs}, rng), nll = torch::rand({1, 8, 1 + kObs}, rng) * 3;
  const auto indices = torch::randint(40, {1, 8}, rng, torch::kInt64), scale = torch::rand({1 + kObs}, rng) + 0.5;
  const auto after = vagram.plan({f.replay, every_view(f.sac), 6000, 5000, gen});
  const auto loss_after = after.loss({mean, mean, mean, indices, nll, scale});
  EXPECT_EQ(after.epoch, "pass-drop-last");
  for (std::int64_t step : {5000, 5250, 5500, 5750, 6000, 6250, 10000}) {
    const auto plan = vagram.plan({f.replay, every_view(f.sac), step, 5000, gen});
    EXPECT_EQ(plan.epoch, "pass-drop-last");
    const auto added = plan.loss({mean, mean, mean, indices, nll, scale}) - loss_after;
    const auto expected = step < 6000 ? nll.mean(2) : torch::zeros({1, 8});
    EXPECT_TRUE(torch::allclose(added, expected, 1e-5, 1e-6)) << "env step " << step;
  }
  settings.epoch = "every";
  EXPECT_THROW(VagramObjective{settings}, Error);
}

// The TOM code's VaGraM runs (mbpo.py:355-364): SAC batches mix model data in with
// probability truncated_linear(0, 20, 0, 0.95, epoch); off by default.
TEST(Vagram, ModelDataRampsLikeTheTomCode) {
  VagramObjective plain({});
  EXPECT_EQ(plain.model_data_probability(0), 1.0);
  EXPECT_EQ(plain.model_data_probability(100), 1.0);
  VagramSettings settings;
  settings.model_data_ramp_epochs = 20;
  VagramObjective ramped(settings);
  EXPECT_EQ(ramped.model_data_probability(0), 0.0);
  EXPECT_DOUBLE_EQ(ramped.model_data_probability(5), 0.95 * 0.25);
  EXPECT_DOUBLE_EQ(ramped.model_data_probability(10), 0.475);
  EXPECT_DOUBLE_EQ(ramped.model_data_probability(20), 0.95);
  EXPECT_DOUBLE_EQ(ramped.model_data_probability(125), 0.95);
  settings.model_data_ramp_epochs = -1;
  EXPECT_THROW(VagramObjective{settings}, Error);
}

// Each form's loss drives a short fit of both model kinds to finite held-out losses.
TEST(Vagram, BothFormsDriveEnsembleAndMdnFits) {
  set_threads(1);
  Fixture f(64);
  const auto all = f.replay.all();
  for (const std::string form : {"published", "weighted-nll"}) {
    VagramSettings settings;
    settings.form = form;
    if (form == "weighted-nll") settings.epoch = "pass-drop-last";
    VagramObjective vagram(settings);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
    const auto plan = vagram.plan({f.replay, every_view(f.sac), 0, 0, gen});
    models::EnsembleSettings es;
    es.members = 2;
    es.elites = 1;
    es.hidden_layers = 1;
    es.hidden_units = 8;
    es.fit.max_epochs = 2;
    es.fit.batch_size = 16;
    models::ProbabilisticEnsemble ensemble(kObs, kAct, es, 1);
    models::MdnSettings ms;
    ms.hidden_layers = 1;
    ms.hidden_units = 8;
    ms.fit.max_epochs = 2;
    ms.fit.batch_size = 16;
    models::MixtureDensityNetwork mdn(kObs, kAct, ms, 1);
    for (models::DynamicsModel* model : {static_cast<models::DynamicsModel*>(&ensemble),
                                         static_cast<models::DynamicsModel*>(&mdn)}) {
      const auto report = model->fit({all.obs, all.action, all.reward, all.next_obs}, plan.fit_weights, plan.loss,
                                     plan.holdout_ratio, plan.epoch);
      EXPECT_GE(report.epochs, 1) << form;
      EXPECT_LE(report.epochs, 2) << form;
      for (double l : report.member_holdout_loss) EXPECT_TRUE(std::isfinite(l)) << form;
    }
  }
}

}  // namespace
}  // namespace tom::objectives
