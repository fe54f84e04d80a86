// VaGraM: value gradients against per-row autograd, the quantile clip, the batch-loss
// formula on hand-made tensors, plan() on a real SAC agent, and a short ensemble fit.
#include <gtest/gtest.h>

#include "tom/agents/sac.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/models/ensemble.hpp"
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

// mean over critics of sum_i (g_v,i e_i)^2 + e_r^2, row by row (the definition).
torch::Tensor definition_loss(const torch::Tensor& g /*[4,N,O]*/, const torch::Tensor& mean,
                              const torch::Tensor& target, const torch::Tensor& indices) {
  auto out = torch::zeros({mean.size(0), mean.size(1)}, torch::kFloat64);
  for (std::int64_t m = 0; m < mean.size(0); ++m)
    for (std::int64_t b = 0; b < mean.size(1); ++b) {
      const auto row = indices[m][b].item<std::int64_t>();
      const auto e = (mean[m][b] - target[m][b]).to(torch::kFloat64);
      double total = 0;
      for (std::int64_t v = 0; v < g.size(0); ++v)
        total += (g[v][row].to(torch::kFloat64) * e.narrow(0, 1, e.size(0) - 1)).square().sum().item<double>();
      out[m][b] = total / static_cast<double>(g.size(0)) + e[0].item<double>() * e[0].item<double>();
    }
  return out;
}

TEST(Vagram, GradientsMatchPerRowAutograd) {
  set_threads(1);
  Fixture f;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto next_obs = f.replay.all().next_obs;
  const auto next_action = sample_next_actions(f.sac, next_obs, 7, gen);
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

TEST(Vagram, BatchLossFormula) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const std::int64_t n = 5;
  auto g = torch::randn({4, n, kObs}, gen);
  g.select(2, 1).zero_();  // no critic's value depends on obs dimension 1
  const auto loss = vagram_batch_loss(g.square().mean(0));
  const auto mean = torch::randn({2, 3, 1 + kObs}, gen), target = torch::randn({2, 3, 1 + kObs}, gen);
  const auto logvar = torch::randn({2, 3, 1 + kObs}, gen);
  const auto indices = torch::tensor({0, 4, 2, 1, 1, 3}, torch::kInt64).view({2, 3});
  const auto out = loss({mean, logvar, target, indices});
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), definition_loss(g, mean, target, indices), 1e-5, 1e-6));
  // The log-variance does not matter.
  const auto other_logvar = logvar + 3.0;
  EXPECT_TRUE(torch::equal(loss({mean, other_logvar, target, indices}), out));
  // Errors in a dimension without value gradient cost nothing; elsewhere they do.
  auto shifted = mean.clone();
  shifted.select(2, 2) += 5.0;  // y index 2 = obs dimension 1
  EXPECT_TRUE(torch::allclose(loss({shifted, logvar, target, indices}), out));
  shifted = mean.clone();
  shifted.select(2, 1) += 5.0;  // obs dimension 0
  EXPECT_GT((loss({shifted, logvar, target, indices}) - out).abs().min().item<double>(), 0.0);
  shifted = mean.clone();
  shifted.select(2, 0) += 1.0;  // the reward error always counts
  EXPECT_GT((loss({shifted, logvar, target, indices}) - out).abs().min().item<double>(), 0.0);
  // Differentiable with respect to the prediction.
  const auto p = mean.clone().requires_grad_(true);
  loss({p, logvar, target, indices}).sum().backward();
  EXPECT_TRUE(p.grad().defined());
  EXPECT_EQ(p.grad().select(2, 2).abs().max().item<double>(), 0.0);
  // Bad input.
  const auto bad_rows = torch::tensor({0, 5, 2, 1, 1, 3}, torch::kInt64).view({2, 3});
  EXPECT_THROW(loss({mean, logvar, target, bad_rows}), Error);
  const auto wide = torch::zeros({2, 3, 2 + kObs});
  EXPECT_THROW(loss({wide, wide, wide, indices}), Error);
  EXPECT_THROW(vagram_batch_loss(torch::zeros({0, 3})), Error);
}

TEST(Vagram, PlanMatchesTheDefinition) {
  set_threads(1);
  Fixture f;
  VagramObjective vagram({});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto plan = vagram.plan({f.replay, f.sac, 0, 0, gen});
  EXPECT_FALSE(plan.fit_weights.defined());  // uniform
  EXPECT_FALSE(plan.trains_distribution);   // the loss shapes the mean only: rollouts use the mean
  ASSERT_TRUE(plan.loss);
  // The same actions from the same generator state, gradients clipped at the 0.95 quantile.
  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto next_obs = f.replay.all().next_obs;
  const auto actions = sample_next_actions(f.sac, next_obs, vagram.settings().chunk, gen2);
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
  const auto out = plan.loss({mean, torch::zeros_like(mean), target, indices});
  EXPECT_TRUE(
      torch::allclose(out.to(torch::kFloat64), definition_loss(clipped.gradients, mean, target, indices), 1e-5, 1e-6));
  // With the unclipped gradients the loss differs somewhere (the clip is applied).
  EXPECT_FALSE(torch::allclose(definition_loss(raw, mean, target, indices),
                               definition_loss(clipped.gradients, mean, target, indices), 1e-5, 1e-6));

  const auto values = vagram.metric_values();
  ASSERT_EQ(values.size(), vagram.metric_names().size());
  EXPECT_NEAR(values[0], raw.to(torch::kFloat64).norm(2, {2}).mean().item<double>(), 1e-6);
  EXPECT_NEAR(values[1], clipped.thresholds.mean().item<double>(), 1e-5 * values[1]);

  data::ReplayBuffer empty(10, kObs, kAct);
  EXPECT_THROW(vagram.plan({empty, f.sac, 0, 0, gen}), Error);
  VagramSettings bad;
  bad.quantile = 1.5;
  EXPECT_THROW(VagramObjective{bad}, Error);
}

TEST(Vagram, LossDrivesAnEnsembleFit) {
  set_threads(1);
  Fixture f(64);
  VagramObjective vagram({});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(12);
  const auto plan = vagram.plan({f.replay, f.sac, 0, 0, gen});
  models::EnsembleSettings es;
  es.members = 2;
  es.elites = 1;
  es.hidden_layers = 1;
  es.hidden_units = 8;
  es.fit.max_epochs = 2;
  es.fit.batch_size = 16;
  models::ProbabilisticEnsemble model(kObs, kAct, es, 1);
  const auto all = f.replay.all();
  const auto report = model.fit({all.obs, all.action, all.reward, all.next_obs}, plan.fit_weights, plan.loss);
  EXPECT_GE(report.epochs, 1);
  EXPECT_LE(report.epochs, 2);
  ASSERT_EQ(report.member_holdout_loss.size(), 2u);
  for (double l : report.member_holdout_loss) EXPECT_TRUE(std::isfinite(l));
}

}  // namespace
}  // namespace tom::objectives
