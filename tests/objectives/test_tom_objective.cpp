// The objective interface's weight checks and diagnostics, and TOM as an objective on a
// real replay buffer and agent: shapes, normalisation, exact continuation after save/load.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "../support.hpp"
#include "small_tom.hpp"

#include "tom/agents/sac.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::objectives {
namespace {

TEST(WeightSummary, BinsByAgeEffectiveSampleSizeAndWindows) {
  // 400 rows in slot order whose insertion order is reversed: slot 0 is the newest.
  const auto age = torch::arange(399, -1, -1, torch::kInt64);
  auto w = torch::ones({400});
  w.narrow(0, 0, 100).fill_(3.0);  // the newest 100 (slots 0..99) weigh 3, the rest 1
  const auto s = summarise_weights(data::Weights::checked(w, 400, "test"), age, 100, 4);
  const double mean = (300.0 + 300.0) / 400.0;
  ASSERT_EQ(s.age_bins.size(), 4u);
  EXPECT_NEAR(s.age_bins[0], 1.0 / mean, 1e-6);  // oldest quarter
  EXPECT_NEAR(s.age_bins[3], 3.0 / mean, 1e-6);  // newest quarter
  EXPECT_NEAR(s.newest_mean, 3.0 / mean, 1e-6);
  EXPECT_NEAR(s.oldest_mean, 1.0 / mean, 1e-6);
  EXPECT_NEAR(s.max, 3.0 / mean, 1e-6);
  EXPECT_NEAR(s.effective_sample_size, 600.0 * 600.0 / (100 * 9.0 + 300.0), 1e-3);
  // Uniform weights: every bin 1 and the full sample size; fewer rows than bins still fill all bins.
  const auto u = summarise_weights(data::Weights(), torch::arange(7, torch::kInt64), 1000, 10);
  for (double b : u.age_bins) EXPECT_DOUBLE_EQ(b, 1.0);
  EXPECT_NEAR(u.effective_sample_size, 7.0, 1e-9);
}

// A replay buffer of 3 episodes of 100 random transitions each.
data::ReplayBuffer filled_buffer(int obs_dim, int action_dim) {
  data::ReplayBuffer buffer(1000, obs_dim, action_dim);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  for (int i = 0; i < 300; ++i) {
    const auto obs = torch::randn({obs_dim}, gen, torch::kFloat64), next = torch::randn({obs_dim}, gen, torch::kFloat64);
    const auto action = torch::rand({action_dim}, gen, torch::kFloat64) * 2 - 1;
    buffer.add({obs.data_ptr<double>(), static_cast<std::size_t>(obs_dim)},
               {action.data_ptr<double>(), static_cast<std::size_t>(action_dim)}, 1.0,
               {next.data_ptr<double>(), static_cast<std::size_t>(obs_dim)}, i % 100 == 99, i % 100 == 0);
  }
  return buffer;
}

ObjectiveSettings small_tom() { return test::small_tom(/*recent_pool=*/50); }

TEST(TomObjective, PlansMeanOneWeightsAndContinuesExactlyAfterSaveLoad) {
  tom::set_threads(1);
  const int obs_dim = 4, action_dim = 2;
  const auto buffer = filled_buffer(obs_dim, action_dim);
  agents::SacSettings sac_settings;
  sac_settings.hidden_size = 16;
  agents::Sac agent(sac_settings, obs_dim, action_dim, {-1, -1}, {1, 1});
  auto settings = small_tom();
  auto tom = make_objective(settings, obs_dim, action_dim, torch::kCPU);
  EXPECT_EQ(tom->name(), "tom");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const FitPlan first = tom->plan({buffer, every_view(agent), 300, 0, gen});
  ASSERT_EQ(first.fit_weights.values().sizes(), torch::IntArrayRef({300}));
  EXPECT_FALSE(first.loss);
  EXPECT_NEAR(first.fit_weights.values().mean().item<double>(), 1.0, 1e-4);
  EXPECT_GE(first.fit_weights.values().min().item<double>(), 0.0);
  ASSERT_EQ(tom::test::figures_of(*tom).names().size(), tom::test::figures_of(*tom).values().size());

  torch::serialize::OutputArchive out;
  tom->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto copy = make_objective(settings, obs_dim, action_dim, torch::kCPU);
  torch::serialize::InputArchive in;
  std::istringstream read_back(bytes.str());
  in.load_from(read_back);
  copy->load(in);
  // The figures of the last plan come back column for column (metrics.csv after a resume).
  EXPECT_EQ(tom::test::figures_of(*copy).values(), tom::test::figures_of(*tom).values());
  auto gen_copy = gen.clone();
  const auto again = tom->plan({buffer, every_view(agent), 300, 0, gen}).fit_weights.values();
  const auto resumed = copy->plan({buffer, every_view(agent), 300, 0, gen_copy}).fit_weights.values();
  EXPECT_TRUE(torch::equal(again, resumed));
  EXPECT_EQ(tom::test::figures_of(*tom).values(), tom::test::figures_of(*copy).values());

  // A checkpoint of another dual form is refused with a message.
  settings.dual.form = "conjugate-u";
  auto other = make_objective(settings, obs_dim, action_dim, torch::kCPU);
  std::istringstream read_again(bytes.str());
  torch::serialize::InputArchive in_again;
  in_again.load_from(read_again);
  EXPECT_THROW(other->load(in_again), tom::Error);
}

TEST(TomObjective, WithoutDiscriminatorRewardMarksThePool) {
  tom::set_threads(1);
  const auto buffer = filled_buffer(4, 2);
  agents::Sac agent({}, 4, 2, {-1, -1}, {1, 1});
  auto settings = small_tom();
  settings.discriminator.enabled = false;
  auto tom = make_objective(settings, 4, 2, torch::kCPU);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  tom->plan({buffer, every_view(agent), 300, 0, gen});
  const auto names = tom::test::figures_of(*tom).names();
  const auto values = tom::test::figures_of(*tom).values();
  const auto at = std::find(names.begin(), names.end(), "tom_reward_mean") - names.begin();
  EXPECT_NEAR(values[at], 50.0 / 300.0, 1e-6);
}

// The authors' code: fits before the recent pool holds recent_pool transitions collected
// after exploration are plain MLE; then the fit's weights are clipped at clip_max while
// the rollout starts get unclipped weights computed with fresh next actions.
TEST(TomObjective, WaitsForTheRecentPoolThenGivesClippedFitAndFreshStartWeights) {
  tom::set_threads(1);
  const auto buffer = filled_buffer(4, 2);
  agents::Sac agent({}, 4, 2, {-1, -1}, {1, 1});
  auto settings = small_tom();
  settings.tom.wait_for_recent_pool = true;
  settings.tom.start_weights = "fresh";
  settings.tom.holdout_ratio = 0.1;
  settings.dual.ema = 0.0;
  settings.dual.clip_max = 1.05;  // low enough to bite on these weights
  auto tom = make_objective(settings, 4, 2, torch::kCPU);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  // 250 exploration steps, 40 since: the pool of 50 is not yet the current policy's.
  const FitPlan waiting = tom->plan({buffer, every_view(agent), 290, 250, gen});
  EXPECT_FALSE(waiting.fit_weights.values().defined());
  EXPECT_FALSE(waiting.start_weights.values().defined());
  EXPECT_EQ(waiting.holdout_ratio, 0.0);
  const FitPlan plan = tom->plan({buffer, every_view(agent), 300, 250, gen});
  ASSERT_TRUE(plan.fit_weights.values().defined());
  ASSERT_TRUE(plan.start_weights.values().defined());
  EXPECT_EQ(plan.holdout_ratio, 0.1);
  // Clipping leaves a plateau of weights at the clip.
  const auto at_top = (plan.fit_weights.values() >= plan.fit_weights.values().max() - 1e-6).sum().item<std::int64_t>();
  EXPECT_GE(at_top, 2);
  // Unclipped: the starts' weights spread further than the clipped fit weights.
  const auto spread = [](const torch::Tensor& w) { return (w.max() / w.mean()).item<double>(); };
  EXPECT_GT(spread(plan.start_weights.values()), spread(plan.fit_weights.values()));
  EXPECT_FALSE(torch::equal(plan.start_weights.values(), plan.fit_weights.values()));
}

// starts_while_waiting = dual (the authors' code): the fits before the pool fills are still
// plain likelihood, but their rollout starts follow the untrained dual's unclipped weights,
// and nothing is trained for them (the first TOM fit is the same as without them).
TEST(TomObjective, WaitingStartsFollowTheUntrainedDualWhenAsked) {
  tom::set_threads(1);
  const auto buffer = filled_buffer(4, 2);
  agents::Sac agent({}, 4, 2, {-1, -1}, {1, 1});
  auto settings = small_tom();
  settings.tom.wait_for_recent_pool = true;
  settings.tom.starts_while_waiting = "dual";
  auto with_dual_starts = make_objective(settings, 4, 2, torch::kCPU);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const FitPlan waiting = with_dual_starts->plan({buffer, every_view(agent), 290, 250, gen});
  EXPECT_FALSE(waiting.fit_weights.values().defined());
  ASSERT_TRUE(waiting.start_weights.values().defined());
  const auto w = waiting.start_weights.values();
  EXPECT_EQ(w.size(0), 300);
  EXPECT_GT((w.max() - w.min()).item<double>(), 1e-3);  // not uniform
  EXPECT_EQ(waiting.holdout_ratio, 0.0);
  // Nothing was trained for them: the dual reports no steps yet.
  Figures figures;
  with_dual_starts->report(figures);
  const auto& names = figures.names();
  const auto at = std::find(names.begin(), names.end(), "tom_dual_steps") - names.begin();
  ASSERT_LT(at, static_cast<std::ptrdiff_t>(names.size()));
  EXPECT_EQ(figures.values()[at], 0.0);
}

// The diagnostic compares the fit's weights with a longer-trained copy of the dual, from
// its own random draws: the plan itself is the same with or without it.
TEST(TomObjective, ReferenceGapIsMeasuredWithoutChangingThePlan) {
  tom::set_threads(1);
  const auto buffer = filled_buffer(4, 2);
  torch::manual_seed(2);
  agents::Sac agent({}, 4, 2, {-1, -1}, {1, 1});
  const auto metric = [](const ModelObjective& objective, const std::string& name) {
    const auto names = tom::test::figures_of(objective).names();
    const auto at = std::find(names.begin(), names.end(), name) - names.begin();
    return tom::test::figures_of(objective).values().at(at);
  };
  auto settings = small_tom();
  settings.dual.check_every = 10;
  std::vector<FitPlan> plans;
  for (int reference_steps : {0, 200}) {
    settings.tom.reference_steps = reference_steps;
    torch::manual_seed(7);
    auto tom = make_objective(settings, 4, 2, torch::kCPU);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    plans.push_back(tom->plan({buffer, every_view(agent), 300, 0, gen}));
    plans.push_back(tom->plan({buffer, every_view(agent), 300, 0, gen}));  // and the next plan too
    EXPECT_EQ(metric(*tom, "tom_dual_steps"), 30.0);
    EXPECT_GT(metric(*tom, "tom_dual_weight_change"), 0.0);
    if (reference_steps == 0) {
      EXPECT_EQ(metric(*tom, "tom_reference_gap"), 0.0);
      EXPECT_EQ(metric(*tom, "tom_reference_steps"), 0.0);
    } else {
      EXPECT_GT(metric(*tom, "tom_reference_gap"), 0.0);
      EXPECT_GT(metric(*tom, "tom_reference_steps"), 10.0);
      EXPECT_LE(metric(*tom, "tom_reference_steps"), 200.0);
    }
  }
  EXPECT_TRUE(torch::equal(plans[0].fit_weights.values(), plans[2].fit_weights.values()));
  EXPECT_TRUE(torch::equal(plans[1].fit_weights.values(), plans[3].fit_weights.values()));
  EXPECT_TRUE(torch::equal(plans[1].start_weights.values(), plans[3].start_weights.values()));
}

// Without warm start every plan starts from a fresh dual: a used objective plans exactly as
// a new one does from the same random state; with it, the carried-over dual differs.
TEST(TomObjective, WarmStartCarriesTheDualOverAndColdStartDoesNot) {
  tom::set_threads(1);
  const auto buffer = filled_buffer(4, 2);
  torch::manual_seed(2);
  agents::Sac agent({}, 4, 2, {-1, -1}, {1, 1});
  for (bool warm : {false, true}) {
    auto settings = small_tom();
    settings.tom.warm_start = warm;
    auto used = make_objective(settings, 4, 2, torch::kCPU);
    auto fresh = make_objective(settings, 4, 2, torch::kCPU);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    used->plan({buffer, every_view(agent), 300, 0, gen});
    auto gen_copy = gen.clone();
    torch::manual_seed(11);
    const auto after_a_plan = used->plan({buffer, every_view(agent), 300, 0, gen}).fit_weights.values();
    torch::manual_seed(11);
    const auto first_plan = fresh->plan({buffer, every_view(agent), 300, 0, gen_copy}).fit_weights.values();
    EXPECT_EQ(torch::equal(after_a_plan, first_plan), !warm) << "warm_start " << warm;
  }
}

TEST(MakeObjective, MleIsUniform) {
  const auto mle = make_objective({}, 4, 2, torch::kCPU);
  EXPECT_EQ(mle->name(), "mle");
  const auto buffer = filled_buffer(4, 2);
  agents::Sac agent({}, 4, 2, {-1, -1}, {1, 1});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const FitPlan plan = mle->plan({buffer, every_view(agent), 300, 0, gen});
  EXPECT_FALSE(plan.fit_weights.values().defined());
  EXPECT_FALSE(plan.loss);
}

}  // namespace
}  // namespace tom::objectives
