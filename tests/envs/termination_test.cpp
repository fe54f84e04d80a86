// Batched termination rules: agreement with Env::step on real transitions, the exact
// boundaries and quirks of ENVS.md section 4, dtypes, and input checks.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <random>

#include "env_test_util.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/envs/mujoco_env.hpp"

namespace tom::envs {
namespace {

using testing::random_action;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Transitions {
  std::vector<double> obs, action, next_obs;
  std::vector<bool> terminated;
  int count = 0;

  void add(const std::vector<double>& o, const std::vector<double>& a, const Step& step) {
    obs.insert(obs.end(), o.begin(), o.end());
    action.insert(action.end(), a.begin(), a.end());
    next_obs.insert(next_obs.end(), step.obs.begin(), step.obs.end());
    terminated.push_back(step.terminated);
    ++count;
  }
  torch::Tensor tensor(std::vector<double>& values, int width, torch::Dtype dtype) const {
    return torch::from_blob(values.data(), {count, width}, torch::kFloat64).to(dtype);
  }
};

// Where a task's termination is decided in qpos (height, or the pole angle), and values
// that push a state to either side of the healthy range.
struct Pushes {
  int qpos_index;
  std::vector<double> values;
};

std::optional<Pushes> pushes_for(const std::string& name) {
  const std::string base = name.substr(0, name.find("-v5"));
  if (base == "hopper" || base == "walker2d") return Pushes{1, {0.5, 0.75, 1.0, 1.5, 2.5}};
  if (base == "ant") return Pushes{2, {0.1, 0.5, 1.5}};
  if (base == "humanoid") return Pushes{2, {0.8, 1.4, 2.5}};
  if (base == "inverted_pendulum") return Pushes{1, {-0.5, 0.1, 0.5}};
  return std::nullopt;  // never terminates
}

class TerminationAgreement : public ::testing::TestWithParam<std::string> {};

// Random-policy rollouts (terminal steps included) plus states pushed across the healthy
// range: the rule on (obs, action, next_obs) must equal step()'s terminated flag.
TEST_P(TerminationAgreement, MatchesStepOnRealTransitions) {
  tom::set_threads(1);
  const std::string name = GetParam();
  auto env = make_mujoco_env(name, {.max_episode_steps = 200});
  const EnvSpec& spec = env->spec();
  std::mt19937_64 rng(5);
  Transitions data;
  for (int episode = 0; data.count < 600; ++episode) {
    std::vector<double> obs = env->reset(static_cast<std::uint64_t>(episode));
    for (bool done = false; !done;) {
      const auto action = random_action(spec, rng);
      const Step step = env->step(action);
      data.add(obs, action, step);
      done = step.terminated || step.truncated;
      obs = step.obs;
    }
  }
  if (const auto pushes = pushes_for(name)) {
    for (double value : pushes->values) {
      std::vector<double> obs = env->reset(1);
      std::vector<double> qpos(env->qpos().begin(), env->qpos().end());
      qpos[pushes->qpos_index] = value;
      env->set_state(qpos, env->qvel());
      obs = env->observation();
      const auto action = random_action(spec, rng);
      data.add(obs, action, env->step(action));
    }
  }
  const int terminal = static_cast<int>(std::count(data.terminated.begin(), data.terminated.end(), true));
  if (pushes_for(name)) EXPECT_GT(terminal, 0);

  const auto rule = termination_fn(name);
  const torch::Tensor done =
      rule(data.tensor(data.obs, spec.obs_dim, torch::kFloat64), data.tensor(data.action, spec.action_dim, torch::kFloat64),
           data.tensor(data.next_obs, spec.obs_dim, torch::kFloat64));
  ASSERT_EQ(done.scalar_type(), torch::kBool);
  ASSERT_EQ(done.sizes(), torch::IntArrayRef({data.count}));
  const auto flags = done.accessor<bool, 1>();
  for (int i = 0; i < data.count; ++i) ASSERT_EQ(flags[i], data.terminated[i]) << "transition " << i;
  RecordProperty("terminal_transitions", terminal);
}

INSTANTIATE_TEST_SUITE_P(AllTasks, TerminationAgreement, ::testing::ValuesIn(env_names()), [](const auto& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Evaluates a task's rule on next observations built from a healthy row with a few entries
// overwritten: one row per entry of `edits` ({index, value}).
std::vector<bool> done_for(const std::string& name, const std::vector<double>& healthy_row,
                           const std::vector<std::pair<int, double>>& edits, torch::Dtype dtype = torch::kFloat64) {
  const EnvSpec spec = make_env(name)->spec();
  const auto rows = static_cast<int64_t>(edits.size());
  torch::Tensor next_obs = torch::zeros({rows, spec.obs_dim}, torch::kFloat64);
  for (int64_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < healthy_row.size(); ++i) next_obs[r][static_cast<int64_t>(i)] = healthy_row[i];
    next_obs[r][edits[r].first] = edits[r].second;
  }
  next_obs = next_obs.to(dtype);
  const torch::Tensor obs = torch::zeros_like(next_obs);
  const torch::Tensor action = torch::zeros({rows, spec.action_dim}, next_obs.options());
  const torch::Tensor done = termination_fn(name)(obs, action, next_obs);
  std::vector<bool> out;
  for (int64_t r = 0; r < rows; ++r) out.push_back(done[r].item<bool>());
  return out;
}

using Flags = std::vector<bool>;

TEST(TerminationEdges, HopperPaperRuleIsOneSidedAndStrict) {
  for (const auto dtype : {torch::kFloat64, torch::kFloat32}) {
    EXPECT_EQ(done_for("hopper", {1.25}, {{0, 1.25}, {0, 0.7}, {0, 0.70001}, {1, 0.2}, {1, -0.2}, {1, 0.19999},
                                           {5, -1000.0}, {5, 100.0}, {10, 99.9}, {3, kNaN}, {7, -kInf}, {0, kInf}},
                       dtype),
              (Flags{false, true, false, true, true, false, false, true, false, true, true, true}));
  }
  // The v5 form states the environment's own check: two-sided |o| < 100.
  EXPECT_EQ(done_for("hopper-v5", {1.25}, {{5, -1000.0}, {5, -99.0}, {0, kInf}, {0, 0.7}, {4, kNaN}}),
            (Flags{true, false, true, true, true}));
}

TEST(TerminationEdges, Walker2dRangesAreOpen) {
  for (const std::string name : {"walker2d", "walker2d-v5"})
    EXPECT_EQ(done_for(name, {1.25}, {{0, 0.8}, {0, 0.81}, {0, 2.0}, {0, 1.99}, {1, -1.0}, {1, 0.99}, {0, kNaN},
                                      {1, kNaN}, {16, kNaN}}),
              (Flags{true, false, true, false, true, false, true, true, false}));
}

TEST(TerminationEdges, AntRangeIsClosedAndNeedsAFiniteState) {
  for (const std::string name : {"ant", "ant-v5"})
    EXPECT_EQ(done_for(name, {0.5}, {{0, 0.2}, {0, 1.0}, {0, 0.19999}, {0, 1.00001}, {26, kNaN}, {13, kInf}}),
              (Flags{false, false, true, true, true, true}));
  // v5: the clipped contact forces after the 27 state entries are not part of the check.
  EXPECT_EQ(done_for("ant-v5", {0.5}, {{30, kNaN}}), Flags{false});
}

TEST(TerminationEdges, HumanoidPaperRuleKeepsItsQuirks) {
  // Ends only strictly outside [1, 2]; NaN is not done (no finiteness test).
  EXPECT_EQ(done_for("humanoid", {1.4}, {{0, 1.0}, {0, 2.0}, {0, 0.999}, {0, 2.001}, {0, kNaN}, {5, kNaN}}),
            (Flags{false, false, true, true, false, false}));
  // The environment's own check is strict and fails on NaN.
  EXPECT_EQ(done_for("humanoid-v5", {1.4}, {{0, 1.0}, {0, 2.0}, {0, 1.5}, {0, kNaN}}),
            (Flags{true, true, false, true}));
}

TEST(TerminationEdges, InvertedPendulumAngleBoundSurvives) {
  for (const std::string name : {"inverted_pendulum", "inverted_pendulum-v5"})
    EXPECT_EQ(done_for(name, {0.0}, {{1, 0.2}, {1, -0.2}, {1, 0.20001}, {0, kNaN}, {3, kInf}}),
              (Flags{false, false, true, true, true}));
}

TEST(TerminationEdges, HalfCheetahAndSwimmerNeverTerminate) {
  for (const std::string name : {"halfcheetah", "halfcheetah-v5", "swimmer", "swimmer-v5"})
    EXPECT_EQ(done_for(name, {0.0}, {{0, kNaN}, {1, 1e9}}), (Flags{false, false}));
}

TEST(TerminationInput, BadShapesAndNamesThrow) {
  EXPECT_THROW(termination_fn("hoper"), tom::Error);
  const auto rule = termination_fn("hopper");
  const auto obs = torch::zeros({4, 11}), action = torch::zeros({4, 3});
  EXPECT_NO_THROW(rule(obs, action, obs));
  EXPECT_THROW(rule(obs, action, torch::zeros({4, 10})), tom::Error);
  EXPECT_THROW(rule(obs, action, torch::zeros({11})), tom::Error);
  EXPECT_THROW(rule(obs, torch::zeros({3, 3}), obs), tom::Error);
  EXPECT_THROW(rule(obs, torch::zeros({4, 2}), obs), tom::Error);
  EXPECT_THROW(rule(obs, action, torch::zeros({4, 11}, torch::kInt64)), tom::Error);
  EXPECT_THROW(rule(obs, action, torch::Tensor()), tom::Error);
}

}  // namespace
}  // namespace tom::envs
