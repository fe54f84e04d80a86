// TOM's weights through the whole model-learning stage (replay buffer, plan, dual,
// data::Weights) under a planning policy, on a finite MDP where the ratio has a closed
// form. A planner is a deterministic policy given as a table here: the stage only ever
// sees it through the ActionSampler view, as it sees PETS's distilled policy.
#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tom/core/threads.hpp"
#include "tom/model_learning/stage.hpp"
#include "tom/models/make_model.hpp"
#include "tom/objectives/finite_mdp.hpp"
#include "tom/objectives/finite_verify.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::model_learning {
namespace {

// pi(a|s) as a table [N, M] over one-hot states and actions; actions are drawn from the
// state's row.
class TablePolicy final : public agents::ActionSampler {
 public:
  explicit TablePolicy(torch::Tensor table) : table_(std::move(table)) {}
  int obs_dim() const override { return static_cast<int>(table_.size(0)); }
  int action_dim() const override { return static_cast<int>(table_.size(1)); }
  agents::ActionSample sample_actions(const torch::Tensor& obs, torch::Generator& gen) const override {
    const auto rows = table_.index_select(0, obs.argmax(1).to(torch::kCPU));
    const auto chosen = torch::multinomial(rows, 1, /*replacement=*/true, gen).squeeze(1);
    return {torch::one_hot(chosen, action_dim()).to(torch::kFloat32), torch::zeros({obs.size(0)})};
  }

 private:
  torch::Tensor table_;
};

// `total` split in proportion to `shares` (largest remainders), at least one each.
std::vector<std::int64_t> allocate(const torch::Tensor& shares, std::int64_t total) {
  const auto p = shares.flatten().to(torch::kFloat64);
  std::vector<std::int64_t> counts(p.numel());
  std::vector<std::pair<double, std::size_t>> remainders;
  std::int64_t given = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double exact = p[static_cast<std::int64_t>(i)].item<double>() * static_cast<double>(total);
    counts[i] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(exact)));
    given += counts[i];
    remainders.push_back({exact - std::floor(exact), i});
  }
  std::sort(remainders.rbegin(), remainders.rend());
  for (std::size_t k = 0; given < total; ++k, ++given) ++counts[remainders[k % remainders.size()].second];
  return counts;
}

// The replay data of the check: rows (s, a, s') with (s, a) in the proportions of d^R and
// s' the MDP's successor, in a random order; `starts` of them, in the proportions of mu0,
// are flagged as episode starts (TOM's s0; d^R puts at least (1 - gamma) mu0(s) on each
// state, so `starts` up to (1 - gamma) rows find rows enough). Returns the buffer and the empirical d^R and
// mu0 it holds, which are what the dual sees.
struct FiniteReplay {
  data::ReplayBuffer replay;
  torch::Tensor replay_share;   // [N, M] float64
  torch::Tensor initial_share;  // [N] float64
};

FiniteReplay finite_replay(const objectives::RatioProblem& problem, std::int64_t rows, std::int64_t starts,
                           torch::Generator& gen) {
  const std::int64_t n = problem.mdp.states(), m = problem.mdp.actions();
  const auto pair_counts = allocate(problem.replay, rows);
  const auto start_counts = allocate(problem.mdp.initial, starts);
  std::vector<std::int64_t> pairs;
  for (std::int64_t k = 0; k < n * m; ++k) pairs.insert(pairs.end(), pair_counts[k], k);
  const auto order = torch::randperm(static_cast<std::int64_t>(pairs.size()), gen, torch::kLong);
  const auto successor = problem.mdp.transition.argmax(2);  // deterministic MDP: the one next state
  FiniteReplay out{data::ReplayBuffer(static_cast<std::int64_t>(pairs.size()), static_cast<int>(n), static_cast<int>(m)),
                   torch::tensor(std::vector<double>(pair_counts.begin(), pair_counts.end()), torch::kFloat64).view({n, m}),
                   torch::tensor(std::vector<double>(start_counts.begin(), start_counts.end()), torch::kFloat64)};
  out.replay_share /= out.replay_share.sum();
  out.initial_share /= out.initial_share.sum();
  std::vector<std::int64_t> starts_left = start_counts;
  for (std::int64_t i = 0; i < order.size(0); ++i) {
    const std::int64_t pair = pairs[order[i].item<std::int64_t>()], s = pair / m, a = pair % m;
    const std::int64_t next = successor[s][a].item<std::int64_t>();
    std::vector<double> obs(n, 0.0), action(m, 0.0), next_obs(n, 0.0);
    obs[s] = action[a] = next_obs[next] = 1.0;
    const bool start = starts_left[s] > 0;
    starts_left[s] -= start ? 1 : 0;
    out.replay.add(obs, action, 0.0, next_obs, /*terminated=*/false, start);
  }
  for (const auto left : starts_left) EXPECT_EQ(left, 0) << "a state has fewer rows than its starts";
  return out;
}

TEST(ModelLearningStage, TomWeightsMatchTheExactRatioUnderATablePlanner) {
  set_threads(1);
  torch::manual_seed(1);  // the networks' initialisation
  auto problem = objectives::random_ratio_problem({.states = 10, .actions = 3, .stochastic = false}, 1);
  // The planner: the most likely action of the problem's policy in each state.
  const auto planner = torch::one_hot(problem.policy.argmax(1), 3).to(torch::kFloat64);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto [replay, replay_share, initial_share] = finite_replay(problem, 20000, 100, gen);

  // The exact ratio of the data the stage is given: d^pi from the buffer's start states,
  // over the buffer's d^R.
  problem.mdp.initial = initial_share;
  const auto occupancy = objectives::discounted_occupancy(problem.mdp, planner);
  const auto exact = occupancy / replay_share;

  objectives::ObjectiveSettings settings;
  settings.choice.name = "tom";
  settings.tom.recent_pool = replay.size();  // every row in the pool: r = 1 on every row
  settings.discriminator.enabled = false;
  settings.dual = objectives::verification_defaults();
  settings.dual.form = "conjugate";  // exact here: deterministic MDP and planner
  settings.dual.steps = 15000;  // 30 pairs settle long before the verifier's 80000 (suite time)
  settings.dual.gamma = problem.mdp.gamma;
  settings.dual.clip_max = 1e6;  // the raw solution is what is compared
  models::EnsembleSettings ensemble;
  ensemble.members = 2;
  ensemble.elites = 1;
  ensemble.hidden_units = 8;
  ensemble.fit.max_epochs = 1;
  Stage stage(models::make_model("ensemble", ensemble, {}, 10, 3, /*seed=*/1, torch::kCPU),
              objectives::make_objective(settings, 10, 3, torch::kCPU));
  const TablePolicy policy(planner.to(torch::kFloat32));
  const Fitted fitted = stage.fit({replay, {.policy = &policy}, replay.size(), 0, gen});

  // The stage's per-transition weights, averaged over the rows of each (s, a).
  const data::Batch all = replay.all();
  const auto pair = all.obs.argmax(1) * 3 + all.action.argmax(1);
  const auto summed = torch::zeros({30}, torch::kFloat64).index_add_(0, pair, fitted.fit_weights.values().to(torch::kFloat64));
  const auto rows = torch::zeros({30}, torch::kFloat64).index_add_(0, pair, torch::ones({pair.size(0)}, torch::kFloat64));
  const auto estimate = (summed / rows).view({10, 3});

  // Relative errors are read where the planner's occupancy is not tiny (w* >= 0.1); the
  // weighted L1 covers every pair, and the weight left on pairs the planner never takes.
  const auto support = exact > 0, main = exact >= 0.1;
  const double weighted_l1 = (replay_share * (estimate - exact).abs()).sum().item<double>();
  const auto relative = ((estimate - exact).abs() / exact).masked_select(main);
  const double off_support_mass = (replay_share * estimate).masked_select(~support).sum().item<double>();
  fmt::print("weighted L1 {:.4f}; relative error where w* >= 0.1: mean {:.4f}, max {:.4f} ({} pairs); weight mass "
             "off the planner's support {:.4f}\n",
             weighted_l1, relative.mean().item<double>(), relative.max().item<double>(), relative.numel(),
             off_support_mass);
  EXPECT_LT(weighted_l1, 0.02);
  EXPECT_LT(relative.mean().item<double>(), 0.05);
  EXPECT_LT(off_support_mass, 0.01);
}

}  // namespace
}  // namespace tom::model_learning
