// Closed-form occupancies of random finite MDPs, and the dual estimator checked against them.
#include <chrono>
#include <ostream>

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

// One MDP and one dual form. 10000 dual steps on 10x3 take about 10 s of one core; figures
// per case in docs/tom_weights.md.
struct DualCase {
  std::int64_t states, actions;
  bool stochastic;
  const char* form;
  double lr;
  std::uint64_t seed;
  int steps;
  double max_mean_relative, max_weighted_l1;  // the bounds asserted
};

std::string case_name(const testing::TestParamInfo<DualCase>& info) {
  const DualCase& c = info.param;
  std::string form = c.form;
  std::erase(form, '-');
  return fmt::format("{}x{}{}_{}_seed{}", c.states, c.actions, c.stochastic ? "Stochastic" : "Deterministic",
                     form, c.seed);
}

// How CTest and gtest show a case (instead of its bytes).
void PrintTo(const DualCase& c, std::ostream* out) {
  *out << c.form << " on " << c.states << "x" << c.actions << (c.stochastic ? " stochastic" : " deterministic")
       << " seed " << c.seed;
}

class DualRecoversTheExactRatio : public testing::TestWithParam<DualCase> {};

TEST_P(DualRecoversTheExactRatio, MeanAndWeightedErrorsAreSmall) {
  set_threads(1);
  const DualCase& c = GetParam();
  const auto start = std::chrono::steady_clock::now();
  const auto problem = random_ratio_problem(
      {.states = c.states, .actions = c.actions, .stochastic = c.stochastic}, c.seed);
  TomDualSettings settings;
  settings.hidden = 64;  // one-hot inputs: a narrower net than the learning loop's suffices
  settings.steps = c.steps;
  settings.lr = c.lr;
  settings.ema = 0.999;
  const auto errors = verify_form(problem, verification_form(c.form), settings, c.seed).errors;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("max rel {:.3f}, mean rel {:.4f}, weighted L1 {:.4f} ({:.0f} s)\n", errors.max_relative,
             errors.mean_relative, errors.weighted_l1, seconds);
  EXPECT_LT(errors.mean_relative, c.max_mean_relative);
  EXPECT_LT(errors.weighted_l1, c.max_weighted_l1);
}

// The exact-next-value conjugate form on deterministic MDPs, conjugate-u (sampled next
// actions and next states, run at 0.35 of the given lr for 3x the steps) on deterministic
// and stochastic ones, over seeds and sizes; the larger MDP needs more steps and gets
// looser bounds. Not asserted, documented in docs/tom_weights.md: conjugate-u on the 10x3
// deterministic MDP of seed 3 (mean rel err 11 %, weighted L1 2.4 %) and the 20x3 of seed 3
// (19 % / 2.2 %, most of it one rarely sampled entry with true ratio 0.03).
INSTANTIATE_TEST_SUITE_P(
    FiniteMdp, DualRecoversTheExactRatio,
    testing::Values(DualCase{10, 3, false, "conjugate-exact", 2e-3, 1, 10000, 0.07, 0.03},
                    DualCase{10, 3, false, "conjugate-exact", 2e-3, 2, 10000, 0.07, 0.03},
                    DualCase{20, 3, false, "conjugate-exact", 2e-3, 3, 20000, 0.10, 0.05},
                    DualCase{10, 3, false, "conjugate-u", 2e-3, 1, 10000, 0.09, 0.03},
                    DualCase{10, 3, false, "conjugate-u", 2e-3, 2, 10000, 0.09, 0.03},
                    DualCase{10, 3, false, "conjugate-u", 2e-3, 4, 10000, 0.09, 0.03},
                    DualCase{20, 3, false, "conjugate-u", 2e-3, 2, 10000, 0.07, 0.03},
                    DualCase{10, 3, true, "conjugate-u", 2e-3, 1, 10000, 0.05, 0.03},
                    DualCase{10, 3, true, "conjugate-u", 2e-3, 2, 10000, 0.05, 0.03},
                    DualCase{20, 3, true, "conjugate-u", 2e-3, 3, 10000, 0.05, 0.03}),
    case_name);

}  // namespace
}  // namespace tom::objectives
