// PMAC: geometric block masses (exact), uniform weights after one plan, eviction from a
// ring buffer, save/load continuation; the TV estimator against the closed form for 1-D
// Gaussians, block weights 1/TV and the snapshot merge.
#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

#include "../support.hpp"

#include "tom/agents/sac.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/objectives/pmac_objective.hpp"

namespace tom::objectives {
namespace {

// A 1-D policy whose pre-tanh Gaussian is N(params[0], exp(params[1])^2) in every state.
// PMAC needs only the policy's snapshots, so that is all it is offered.
class FakePolicy final : public agents::PolicySnapshots {
 public:
  torch::Tensor params = torch::zeros({2});
  int obs_dim() const override { return 1; }
  torch::Tensor policy_parameters() const override { return params.clone(); }
  agents::GaussianHead policy_gaussian(const torch::Tensor& obs, const torch::Tensor& p) const override {
    const auto ones = torch::ones({obs.size(0), 1});
    return {ones * p[0], ones * p[1]};
  }
};

// Adds n transitions whose observation is their insertion number.
void add(data::ReplayBuffer& replay, std::int64_t n) {
  const auto first = static_cast<double>(replay.total_added());
  const auto obs = torch::arange(first, first + static_cast<double>(n), torch::kFloat32).unsqueeze(1);
  replay.add_batch(obs, torch::zeros({n, 1}), torch::zeros({n}), obs + 1, torch::zeros({n}));
}

// Weights keyed by insertion number (the observation of the slot).
std::vector<double> by_insertion(const data::ReplayBuffer& replay, const torch::Tensor& weights,
                                 std::int64_t first, std::int64_t last) {
  const auto obs = replay.all().obs.select(1, 0);
  std::vector<double> out(last - first, -1.0);
  for (std::int64_t slot = 0; slot < replay.size(); ++slot) {
    const auto k = static_cast<std::int64_t>(obs[slot].item<double>());
    if (k >= first && k < last) out[k - first] = weights[slot].item<double>();
  }
  return out;
}

double block_sum(const std::vector<double>& w, std::int64_t begin, std::int64_t end) {
  double s = 0;
  for (std::int64_t i = begin; i < end; ++i) s += w[i];
  return s;
}

std::string save_bytes(const PmacObjective& objective) {
  torch::serialize::OutputArchive archive;
  objective.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_bytes(PmacObjective& objective, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  objective.load(archive);
}

double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

PmacSettings tv_settings() {
  PmacSettings s;
  s.form = "tv";
  return s;
}

TEST(Pmac, GeometricBlockMassesAreExact) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(1000, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  PmacObjective pmac({});
  const FitContext context{replay, {.snapshots = &agent}, 0, 0, gen};

  add(replay, 20);
  auto plan = pmac.plan(context);
  ASSERT_TRUE(plan.fit_weights.values().defined());
  EXPECT_FALSE(plan.loss);
  EXPECT_TRUE(torch::allclose(plan.fit_weights.values(), torch::ones({20})));  // one plan only: uniform

  const std::vector<std::int64_t> sizes{20, 10, 30, 5, 15};
  for (std::size_t b = 1; b < sizes.size(); ++b) {
    add(replay, sizes[b]);
    plan = pmac.plan(context);
  }
  const std::int64_t n = replay.size();
  ASSERT_EQ(n, 80);
  EXPECT_NEAR(plan.fit_weights.values().mean().item<double>(), 1.0, 1e-6);
  const auto w = by_insertion(replay, plan.fit_weights.values(), 0, n);
  const double total = block_sum(w, 0, n);
  // Newest first: 0.1, 0.09, 0.081, 0.0729; the first block keeps 0.9^4 = 0.6561.
  const std::vector<double> expected{0.6561, 0.0729, 0.081, 0.09, 0.1};
  std::int64_t begin = 0;
  for (std::size_t b = 0; b < sizes.size(); ++b) {
    EXPECT_NEAR(block_sum(w, begin, begin + sizes[b]) / total, expected[b], 1e-6) << "block " << b;
    for (std::int64_t i = begin; i < begin + sizes[b]; ++i) EXPECT_NEAR(w[i], w[begin], 1e-5);  // equal within
    begin += sizes[b];
  }
  const auto names = tom::test::figures_of(pmac).names();
  const auto values = tom::test::figures_of(pmac).values();
  ASSERT_EQ(names.size(), values.size());
  EXPECT_EQ(names[0], "pmac_blocks");
  EXPECT_EQ(values[0], 5.0);
  EXPECT_NEAR(values[1], 0.1, 1e-6);
}

TEST(Pmac, GeometricEvictionFromRingBuffer) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(10, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  PmacObjective pmac({});
  const FitContext context{replay, {.snapshots = &agent}, 0, 0, gen};
  add(replay, 6);  // block A = [0, 6)
  pmac.plan(context);
  add(replay, 6);  // block B = [6, 12); A loses 0 and 1
  auto plan = pmac.plan(context);
  // Per transition: A 0.9 / 6, B 0.1 / 6 (weights do not depend on evicted block-mates).
  auto w = by_insertion(replay, plan.fit_weights.values(), 2, 12);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(w[i] / w[9], 9.0, 1e-4);
  EXPECT_NEAR(plan.fit_weights.values().mean().item<double>(), 1.0, 1e-6);

  add(replay, 8);  // block C = [12, 20); A gone, B keeps 10 and 11
  plan = pmac.plan(context);
  ASSERT_EQ(pmac.blocks().size(), 2u);  // A dropped
  EXPECT_EQ(pmac.blocks()[0].begin, 6);
  // Masses A 0.81 (evicted), B 0.09 / 6 = 0.015 each, C 0.1 / 8 = 0.0125 each.
  w = by_insertion(replay, plan.fit_weights.values(), 10, 20);
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(w[i] / w[9], 0.015 / 0.0125, 1e-4);
  for (int i = 2; i < 10; ++i) EXPECT_NEAR(w[i], w[9], 1e-6);
  EXPECT_NEAR(plan.fit_weights.values().mean().item<double>(), 1.0, 1e-6);
}

TEST(Pmac, GeometricSaveLoadContinuesIdentically) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(50, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const FitContext context{replay, {.snapshots = &agent}, 0, 0, gen};
  PmacObjective a({});
  for (int k = 0; k < 4; ++k) {  // 4 blocks of 15: the first is evicted by the end
    add(replay, 15);
    a.plan(context);
  }
  PmacObjective b({});
  load_bytes(b, save_bytes(a));
  for (int k = 0; k < 3; ++k) {
    add(replay, 7 + k);
    const auto wa = a.plan(context).fit_weights.values(), wb = b.plan(context).fit_weights.values();
    EXPECT_TRUE(torch::equal(wa, wb));
    EXPECT_EQ(tom::test::figures_of(a).values(), tom::test::figures_of(b).values());
  }
  // A fresh objective on the same buffer does not give the same weights (the test can fail).
  PmacObjective fresh({});
  EXPECT_FALSE(torch::allclose(fresh.plan(context).fit_weights.values(), a.plan(context).fit_weights.values()));

  PmacObjective tv(tv_settings());
  EXPECT_THROW(load_bytes(tv, save_bytes(a)), Error);  // another form
  torch::serialize::OutputArchive empty;
  std::ostringstream out;
  empty.save_to(out);
  torch::serialize::InputArchive in_archive;
  std::istringstream in(out.str());
  in_archive.load_from(in);
  EXPECT_THROW(b.load(in_archive), Error);  // entries missing
}

TEST(Pmac, RejectsBadUse) {
  FakePolicy agent;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  data::ReplayBuffer empty(10, 1, 1);
  PmacObjective pmac({});
  EXPECT_THROW(pmac.plan({empty, {.snapshots = &agent}, 0, 0, gen}), Error);
  data::ReplayBuffer big(100, 1, 1), small(100, 1, 1);
  add(big, 30);
  add(small, 10);
  pmac.plan({big, {.snapshots = &agent}, 0, 0, gen});
  EXPECT_THROW(pmac.plan({small, {.snapshots = &agent}, 0, 0, gen}), Error);  // fewer insertions than before
  PmacSettings s;
  s.form = "kl";
  EXPECT_THROW(PmacObjective{s}, Error);
  s = {};
  s.decay = 1.0;
  EXPECT_THROW(PmacObjective{s}, Error);
  s = {};
  s.max_snapshots = 1;
  EXPECT_THROW(PmacObjective{s}, Error);
}

TEST(Pmac, TvEstimatorMatchesClosedForm) {
  set_threads(1);
  FakePolicy agent;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto states = torch::randn({1000, 1}, gen);
  const auto current = torch::zeros({2});
  std::vector<torch::Tensor> snapshots{torch::zeros({2})};
  const std::vector<double> mus{0.5, 1.0, 2.0};
  for (double mu : mus) snapshots.push_back(torch::tensor({static_cast<float>(mu), 0.0f}));
  const auto tv = estimate_tv(agent, states, current, snapshots, 10, gen);
  ASSERT_EQ(tv.size(), 4u);
  EXPECT_EQ(tv[0], 0.0);  // identical policies
  for (std::size_t j = 0; j < mus.size(); ++j)
    EXPECT_NEAR(tv[j + 1], 2.0 * phi(mus[j] / 2.0) - 1.0, 0.02) << "mu " << mus[j];

  // On a real SAC policy: zero for itself, positive for a perturbed copy.
  agents::SacSettings small;
  small.hidden_size = 16;
  agents::Sac sac(small, 3, 2, {-1.0, -1.0}, {1.0, 1.0}, torch::kCPU, 4);
  const auto params = sac.policy_parameters();
  const auto perturbed = params + 0.3 * torch::randn(params.sizes(), gen);
  const auto sac_tv = estimate_tv(sac, torch::randn({200, 3}, gen), params, {params, perturbed}, 10, gen);
  EXPECT_EQ(sac_tv[0], 0.0);
  EXPECT_GT(sac_tv[1], 0.05);
  EXPECT_LT(sac_tv[1], 1.0);
}

TEST(Pmac, TvBlockWeights) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(1000, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const FitContext context{replay, {.snapshots = &agent}, 0, 0, gen};
  PmacObjective pmac(tv_settings());
  const auto set_mean = [&](double mu) { agent.params = torch::tensor({static_cast<float>(mu), 0.0f}); };

  set_mean(0.0);
  add(replay, 20);
  auto plan = pmac.plan(context);  // one block, its policy is the current one
  EXPECT_TRUE(torch::allclose(plan.fit_weights.values(), torch::ones({20})));
  ASSERT_EQ(pmac.blocks().size(), 1u);
  EXPECT_DOUBLE_EQ(pmac.blocks()[0].weight, 1.0 / 0.01);

  add(replay, 10);  // collected under the snapshot mu = 0
  set_mean(1.0);
  pmac.plan(context);
  add(replay, 10);  // under mu = 1
  set_mean(2.0);
  pmac.plan(context);
  add(replay, 10);  // under mu = 2, and the policy stays there
  plan = pmac.plan(context);
  const auto blocks = pmac.blocks();
  ASSERT_EQ(blocks.size(), 4u);
  // The first block (exploration) uses the first snapshot, like the second.
  EXPECT_NEAR(blocks[0].tv, 2.0 * phi(1.0) - 1.0, 0.03);
  EXPECT_EQ(blocks[0].tv, blocks[1].tv);  // same snapshot, same draws
  EXPECT_NEAR(blocks[2].tv, 2.0 * phi(0.5) - 1.0, 0.03);
  EXPECT_EQ(blocks[3].tv, 0.0);
  EXPECT_DOUBLE_EQ(blocks[3].weight, 100.0);  // identical snapshot -> 1 / min_tv
  EXPECT_LT(blocks[0].weight, blocks[2].weight);  // older, more different -> smaller
  EXPECT_NEAR(plan.fit_weights.values().mean().item<double>(), 1.0, 1e-6);
  const auto w = by_insertion(replay, plan.fit_weights.values(), 0, 50);
  EXPECT_NEAR(w[45] / w[0], 100.0 * blocks[0].tv, 1e-3);
  EXPECT_NEAR(w[35] / w[25], blocks[1].tv / blocks[2].tv, 1e-4);
  const auto values = tom::test::figures_of(pmac).values();
  ASSERT_EQ(values.size(), tom::test::figures_of(pmac).names().size());
  EXPECT_EQ(values[0], 4.0);
  EXPECT_EQ(values[2], 0.0);  // newest block's TV
}

TEST(Pmac, TvMergesOldestBlocksKeepingTheNewerSnapshot) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(1000, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  const FitContext context{replay, {.snapshots = &agent}, 0, 0, gen};
  PmacSettings s = tv_settings();
  s.max_snapshots = 3;
  s.tv_states = 2000;
  PmacObjective pmac(s);
  for (int k = 0; k < 4; ++k) {  // policy means 0, 1, 2, 3 at plans 1..4
    agent.params = torch::tensor({static_cast<float>(k), 0.0f});
    add(replay, 10);
    pmac.plan(context);
  }
  // Blocks before merging: [0,10) S0, [10,20) S0, [20,30) S1, [30,40) S2.
  // Merged: [0,20) S0 -> then [0,30) S1; left [0,30) with S1 and [30,40) with S2.
  const auto blocks = pmac.blocks();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].begin, 0);
  EXPECT_EQ(blocks[0].end, 30);
  EXPECT_EQ(blocks[1].begin, 30);
  EXPECT_NEAR(blocks[0].tv, 2.0 * phi(1.0) - 1.0, 0.03);  // TV(mean 3, mean 1)
  EXPECT_NEAR(blocks[1].tv, 2.0 * phi(0.5) - 1.0, 0.03);  // TV(mean 3, mean 2)
}

TEST(Pmac, TvSaveLoadContinuesIdentically) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(1000, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  PmacSettings s = tv_settings();
  s.max_snapshots = 4;
  PmacObjective a(s);
  for (int k = 0; k < 3; ++k) {
    agent.params = torch::tensor({0.4f * static_cast<float>(k), -0.1f * static_cast<float>(k)});
    add(replay, 12);
    a.plan({replay, {.snapshots = &agent}, 0, 0, gen});
  }
  PmacObjective b(s);
  load_bytes(b, save_bytes(a));
  EXPECT_EQ(tom::test::figures_of(a).values(), tom::test::figures_of(b).values());
  for (int k = 3; k < 6; ++k) {
    agent.params = torch::tensor({0.4f * static_cast<float>(k), -0.1f * static_cast<float>(k)});
    add(replay, 12);
    auto gen_a = at::make_generator<at::CPUGeneratorImpl>(100 + k), gen_b = at::make_generator<at::CPUGeneratorImpl>(100 + k);
    const auto wa = a.plan({replay, {.snapshots = &agent}, 0, 0, gen_a}).fit_weights.values();
    const auto wb = b.plan({replay, {.snapshots = &agent}, 0, 0, gen_b}).fit_weights.values();
    EXPECT_TRUE(torch::equal(wa, wb));
  }
  // A snapshot of another size (another agent) is reported, not crashed on.
  PmacObjective c(s);
  load_bytes(c, save_bytes(a));
  agent.params = torch::zeros({3});
  add(replay, 5);
  EXPECT_THROW(c.plan({replay, {.snapshots = &agent}, 0, 0, gen}), Error);
  PmacObjective geometric({});
  EXPECT_THROW(load_bytes(geometric, save_bytes(a)), Error);
}

// The TOM authors' PMAC: every burst of SAC updates is a policy change. Hand computation
// for 5000 exploration transitions, then a burst after steps 0, 4 and 8 and a plan after
// step 9: blocks {exploration + step 0}, {1..4}, {5..8} and the open {9} hold masses
// 0.9^3, 0.1 * 0.9^2, 0.1 * 0.9 and 0.1, each split evenly inside its block.
TEST(Pmac, PerUpdateDecayMatchesTheAuthorsCodeByHand) {
  set_threads(1);
  FakePolicy agent;
  data::ReplayBuffer replay(10000, 1, 1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  PmacSettings settings;
  settings.policy_change = "update";
  PmacObjective pmac(settings);
  const FitContext context{replay, {.snapshots = &agent}, 0, 0, gen};
  add(replay, 5000);
  EXPECT_TRUE(torch::allclose(pmac.plan(context).fit_weights.values(), torch::ones({5000})));  // before any update
  add(replay, 1);
  pmac.policy_updated(replay.total_added());
  for (int burst = 0; burst < 2; ++burst) {
    add(replay, 4);
    pmac.policy_updated(replay.total_added());
  }
  add(replay, 1);
  const auto plan = pmac.plan(context);
  ASSERT_TRUE(plan.start_weights.values().defined());
  EXPECT_TRUE(torch::equal(plan.fit_weights.values(), plan.start_weights.values()));
  const auto w = by_insertion(replay, plan.fit_weights.values(), 0, 5010);
  const double n = 5010.0;  // weights are per-transition mass * n (the masses sum to 1)
  EXPECT_NEAR(w[0], 0.729 / 5001 * n, 1e-4);
  EXPECT_NEAR(w[5000], 0.729 / 5001 * n, 1e-4);
  EXPECT_NEAR(w[5001], 0.081 / 4 * n, 1e-3);
  EXPECT_NEAR(w[5004], 0.081 / 4 * n, 1e-3);
  EXPECT_NEAR(w[5005], 0.09 / 4 * n, 1e-3);
  EXPECT_NEAR(w[5009], 0.1 * n, 1e-2);
  // A burst with no new transition is not a policy change.
  pmac.policy_updated(replay.total_added());
  pmac.policy_updated(replay.total_added());
  EXPECT_EQ(pmac.blocks().size(), 4u);
  // Its blocks come from policy_updated(), not from plans: a checkpoint holding them loads
  // (a hopper run's pmac cell was once refused as "inconsistent" on resume) and goes on alike.
  PmacObjective copy(settings);
  load_bytes(copy, save_bytes(pmac));
  EXPECT_EQ(copy.blocks().size(), 4u);
  add(replay, 3);
  pmac.policy_updated(replay.total_added());
  copy.policy_updated(replay.total_added());
  EXPECT_TRUE(torch::equal(pmac.plan(context).fit_weights.values(), copy.plan(context).fit_weights.values()));
  // The per-update form is geometric only.
  settings.form = "tv";
  EXPECT_THROW(PmacObjective bad(settings), Error);
}

}  // namespace
}  // namespace tom::objectives
