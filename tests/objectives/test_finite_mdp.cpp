// Closed-form occupancies of random finite MDPs, and the dual estimator checked against them.
#include <malloc.h>

#include <chrono>
#include <cstdio>

#include <gtest/gtest.h>
#include <fmt/core.h>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/objectives/finite_mdp.hpp"
#include "tom/objectives/finite_verify.hpp"

namespace tom::objectives {
namespace {

TEST(FiniteMdp, OccupancySatisfiesBellmanFlow) {
  for (bool stochastic : {false, true}) {
    const auto problem = random_ratio_problem({.states = 12, .actions = 3, .stochastic = stochastic}, 5);
    const auto& mdp = problem.mdp;
    EXPECT_NEAR(problem.occupancy.sum().item<double>(), 1.0, 1e-9);
    EXPECT_NEAR(problem.replay.sum().item<double>(), 1.0, 1e-9);
    EXPECT_GT(problem.replay.min().item<double>(), 0.0);
    // d(s) = (1-gamma) mu0(s) + gamma sum_{s',a'} d(s',a') P(s|s',a').
    const auto state_occupancy = problem.occupancy.sum(1);
    const auto inflow = (problem.occupancy.unsqueeze(2) * mdp.transition).sum(torch::IntArrayRef{0, 1});
    EXPECT_TRUE(torch::allclose(state_occupancy, (1 - mdp.gamma) * mdp.initial + mdp.gamma * inflow,
                                1e-9, 1e-12));
    EXPECT_TRUE(torch::allclose(problem.true_ratio * problem.replay, problem.occupancy));
    EXPECT_TRUE(torch::allclose(mdp.transition.sum(2), torch::ones({12, 3}, torch::kFloat64)));
  }
}

TEST(FiniteMdp, DeterministicTransitionsHaveOneSuccessor) {
  const auto problem = random_ratio_problem({.states = 8, .actions = 2}, 1);
  EXPECT_TRUE((problem.mdp.transition.gt(0).sum(2) == 1).all().item<bool>());
}

TEST(FiniteMdp, RejectsBadSizes) {
  EXPECT_THROW(random_ratio_problem({.states = 0, .actions = 2}, 1), Error);
  EXPECT_THROW(random_ratio_problem({.states = 4, .actions = 2, .gamma = 1.0}, 1), Error);
  const auto problem = random_ratio_problem({.states = 4, .actions = 2}, 1);
  EXPECT_THROW(discounted_occupancy(problem.mdp, torch::ones({3, 2})), Error);
  EXPECT_THROW(ratio_errors(problem, torch::ones({4, 3})), Error);
  EXPECT_THROW(verification_form("conjugate-exakt"), Error);
}

TEST(FiniteMdp, ExactRatioHasZeroError) {
  const auto problem = random_ratio_problem({.states = 6, .actions = 2}, 3);
  const auto errors = ratio_errors(problem, problem.true_ratio);
  EXPECT_EQ(errors.max_relative, 0.0);
  EXPECT_EQ(errors.weighted_l1, 0.0);
}

struct DualCase {
  std::int64_t states, actions;
  bool stochastic;
  const char* form;
  double lr;
  std::uint64_t seed;
};

TEST(FiniteMdp, DualRecoversTheExactRatio) {
  set_threads(1);
  // glibc returns the heap top to the OS after every step and faults it back in; a pad
  // keeps it, making each dual step about 3x cheaper (docs/tom_weights.md).
  mallopt(M_TOP_PAD, 256 << 20);
  const std::vector<DualCase> cases = {
      {10, 3, false, "conjugate-exact", 2e-3, 1},
      {10, 3, false, "conjugate-u", 2e-3, 1},
      {10, 3, true, "conjugate-u", 1e-3, 1},
  };
  for (const auto& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    const auto problem = random_ratio_problem(
        {.states = c.states, .actions = c.actions, .stochastic = c.stochastic}, c.seed);
    TomDualSettings settings;
    settings.hidden = 64;  // one-hot inputs: a narrower net than the learning loop's suffices
    settings.steps = 10000;
    settings.lr = c.lr;
    settings.ema = 0.999;
    const auto errors = verify_form(problem, verification_form(c.form), settings, c.seed);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto label = fmt::format("{}x{} {} {} seed {}", c.states, c.actions,
                                   c.stochastic ? "stochastic" : "deterministic", c.form, c.seed);
    fmt::print("{}: max rel {:.3f}, mean rel {:.4f}, weighted L1 {:.4f} ({:.0f} s)\n", label,
               errors.max_relative, errors.mean_relative, errors.weighted_l1, seconds);
    std::fflush(stdout);
    EXPECT_LT(errors.mean_relative, c.stochastic ? 0.1 : 0.07) << label;
    EXPECT_LT(errors.weighted_l1, c.stochastic ? 0.06 : 0.03) << label;
  }
}

}  // namespace
}  // namespace tom::objectives
