// The Env contract of the MuJoCo tasks: specs, seeding, bad input, time limit, the reward
// formulas of ENVS.md, the v4/v5 healthy-reward difference and state save/load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "env_test_util.hpp"
#include "tom/core/error.hpp"
#include "tom/envs/mujoco_env.hpp"

namespace tom::envs {
namespace {

using testing::random_action;

struct ExpectedSpec {
  std::string name;
  int obs_dim, action_dim;
  double bound, dt;
};

TEST(EnvSpecs, DimensionsBoundsAndTimestepsFollowTheSpecification) {
  const std::vector<ExpectedSpec> expected = {
      {"hopper", 11, 3, 1.0, 0.008},          {"walker2d", 17, 6, 1.0, 0.008},
      {"halfcheetah", 17, 6, 1.0, 0.05},      {"ant", 27, 8, 1.0, 0.05},
      {"humanoid", 45, 17, 0.4, 0.015},       {"inverted_pendulum", 4, 1, 3.0, 0.04},
      {"swimmer", 8, 2, 1.0, 0.04},           {"hopper-v5", 11, 3, 1.0, 0.008},
      {"walker2d-v5", 17, 6, 1.0, 0.008},     {"halfcheetah-v5", 17, 6, 1.0, 0.05},
      {"ant-v5", 105, 8, 1.0, 0.05},          {"humanoid-v5", 348, 17, 0.4, 0.015},
      {"inverted_pendulum-v5", 4, 1, 3.0, 0.04}, {"swimmer-v5", 8, 2, 1.0, 0.04}};
  ASSERT_EQ(env_names().size(), expected.size());
  for (const ExpectedSpec& e : expected) {
    SCOPED_TRACE(e.name);
    auto env = make_env(e.name);
    const EnvSpec& spec = env->spec();
    EXPECT_EQ(spec.name, e.name);
    EXPECT_EQ(spec.obs_dim, e.obs_dim);
    EXPECT_EQ(spec.action_dim, e.action_dim);
    EXPECT_NEAR(spec.dt, e.dt, 1e-12);
    EXPECT_EQ(spec.max_episode_steps, 1000);
    ASSERT_EQ(spec.action_low.size(), static_cast<std::size_t>(e.action_dim));
    for (int i = 0; i < e.action_dim; ++i) {
      EXPECT_EQ(spec.action_low[i], -e.bound);
      EXPECT_EQ(spec.action_high[i], e.bound);
    }
    EXPECT_EQ(env->reset(0).size(), static_cast<std::size_t>(e.obs_dim));
  }
}

TEST(EnvRegistry, UnknownNameListsTheValidNames) {
  try {
    make_env("hoper");
    FAIL() << "no error";
  } catch (const tom::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("hoper"), std::string::npos);
    for (const std::string& name : env_names()) EXPECT_NE(message.find(name), std::string::npos) << name;
  }
  EXPECT_THROW(make_env("hopper", {.model_file = "/nonexistent/model.xml"}), tom::Error);
  // A model of another task is rejected by its dimensions.
  EXPECT_THROW(make_env("hopper", {.model_file = TOM_SOURCE_DIR "/assets/mujoco/ant.xml"}), tom::Error);
  EXPECT_THROW(make_env("hopper", {.max_episode_steps = 0}), tom::Error);
}

std::vector<Step> rollout(Env& env, std::uint64_t seed, int steps, std::uint64_t action_seed) {
  std::mt19937_64 rng(action_seed);
  std::vector<Step> out;
  out.push_back({.obs = env.reset(seed)});
  for (int t = 0; t < steps; ++t) {
    Step step = env.step(random_action(env.spec(), rng));
    const bool done = step.terminated || step.truncated;
    out.push_back(std::move(step));
    if (done) out.push_back({.obs = env.reset()});
  }
  return out;
}

bool same_trajectory(const std::vector<Step>& a, const std::vector<Step>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].obs != b[i].obs || a[i].reward != b[i].reward || a[i].terminated != b[i].terminated ||
        a[i].truncated != b[i].truncated)
      return false;
  return true;
}

TEST(EnvSeeding, SameSeedAndActionsGiveTheSameTrajectory) {
  for (const std::string name : {"hopper", "ant", "humanoid-v5"}) {
    SCOPED_TRACE(name);
    auto a = make_env(name), b = make_env(name);
    // 150 steps include several episodes for hopper, so reset() without a seed is covered.
    const auto first = rollout(*a, 7, 150, 1);
    EXPECT_TRUE(same_trajectory(first, rollout(*b, 7, 150, 1)));
    EXPECT_TRUE(same_trajectory(first, rollout(*a, 7, 150, 1)));  // re-seeding restarts the sequence
    EXPECT_FALSE(same_trajectory(first, rollout(*b, 8, 150, 1)));
  }
}

TEST(EnvSeeding, ResetWithoutSeedContinuesTheGenerator) {
  auto env = make_env("halfcheetah");
  const auto seeded = env->reset(3);
  const auto next = env->reset();
  EXPECT_NE(seeded, next);
  EXPECT_EQ(env->reset(3), seeded);
  EXPECT_EQ(env->reset(), next);
}

TEST(EnvReset, NoiseIsDrawnPerEntryWithinItsScale) {
  auto hopper = make_mujoco_env("hopper");
  hopper->reset(1);
  const std::vector<double> hopper_qpos0 = {0, 1.25, 0, 0, 0, 0};
  for (int i = 0; i < 6; ++i) {
    EXPECT_NE(hopper->qpos()[i], hopper_qpos0[i]);
    EXPECT_LE(std::abs(hopper->qpos()[i] - hopper_qpos0[i]), 5e-3);
    EXPECT_LE(std::abs(hopper->qvel()[i]), 5e-3);
  }
  // Every entry of the free joint's quaternion gets its own noise (then MuJoCo 2.2.2's
  // mj_forward normalises qpos quaternions in place).
  auto ant = make_mujoco_env("ant");
  ant->reset(1);
  double norm = 0.0;
  for (int i = 3; i < 7; ++i) {
    EXPECT_NE(ant->qpos()[i], i == 3 ? 1.0 : 0.0);
    norm += ant->qpos()[i] * ant->qpos()[i];
  }
  EXPECT_NEAR(norm, 1.0, 1e-12);
  EXPECT_EQ(ant->observation()[1], ant->qpos()[3]);  // obs = qpos[2:], qvel
}

TEST(EnvInput, BadActionsAndOutOfOrderCallsThrow) {
  auto env = make_env("hopper");
  EXPECT_THROW(env->step(std::vector<double>{0, 0, 0}), tom::Error);  // before reset
  env->reset(0);
  EXPECT_THROW(env->step(std::vector<double>{0, 0}), tom::Error);
  EXPECT_THROW(env->step(std::vector<double>{0, 0, 0, 0}), tom::Error);
  EXPECT_THROW(env->step(std::vector<double>{0, std::nan(""), 0}), tom::Error);
  EXPECT_THROW(env->step(std::vector<double>{std::numeric_limits<double>::infinity(), 0, 0}), tom::Error);
  EXPECT_NO_THROW(env->step(std::vector<double>{0, 0, 0}));  // a rejected action changes nothing

  // Run to termination (the hopper falls with full forward torque), then stepping throws.
  Step step;
  for (int t = 0; t < 1000 && !step.terminated; ++t) step = env->step(std::vector<double>{1, 1, 1});
  ASSERT_TRUE(step.terminated);
  EXPECT_FALSE(step.truncated);
  EXPECT_THROW(env->step(std::vector<double>{0, 0, 0}), tom::Error);
  env->reset();
  EXPECT_NO_THROW(env->step(std::vector<double>{0, 0, 0}));
}

TEST(EnvTimeLimit, TheStepReachingTheLimitIsTruncatedNotTerminated) {
  auto env = make_env("halfcheetah", {.max_episode_steps = 5});
  EXPECT_EQ(env->spec().max_episode_steps, 5);
  env->reset(0);
  const std::vector<double> action(6, 0.1);
  for (int t = 1; t <= 5; ++t) {
    const Step step = env->step(action);
    EXPECT_FALSE(step.terminated);
    EXPECT_EQ(step.truncated, t == 5) << "step " << t;
  }
  EXPECT_THROW(env->step(action), tom::Error);
  env->reset();
  EXPECT_FALSE(env->step(action).truncated);
}

TEST(EnvActions, OutOfBoundActionsArePassedOnAndCostedUnclipped) {
  // MuJoCo clamps the force, so the motion equals that of the bound; the cost does not.
  auto clipped = make_mujoco_env("hopper"), raw = make_mujoco_env("hopper");
  clipped->reset(5);
  raw->reset(5);
  const Step a = clipped->step(std::vector<double>{1, -1, 1});
  const Step b = raw->step(std::vector<double>{5, -5, 5});
  EXPECT_EQ(raw->data().ctrl[0], 5.0);
  EXPECT_EQ(a.obs, b.obs);
  EXPECT_NEAR(a.reward - b.reward, 1e-3 * (75.0 - 3.0), 1e-12);
}

// Reward = forward weight * dx/dt + healthy - ctrl cost - contact cost, recomputed here from
// the simulator fields that ENVS.md names.
TEST(EnvRewards, FollowTheFormulasOfTheSpecification) {
  std::mt19937_64 rng(11);
  {
    auto env = make_mujoco_env("hopper");
    env->reset(0);
    const double x = env->qpos()[0];
    const auto action = random_action(env->spec(), rng);
    const Step step = env->step(action);
    double cost = 0;
    for (double a : action) cost += 1e-3 * a * a;
    EXPECT_NEAR(step.reward, (env->qpos()[0] - x) / 0.008 + 1.0 - cost, 1e-9);
  }
  {
    // Over 60 steps, so that some steps end with feet on the floor (non-zero contact cost).
    auto env = make_mujoco_env("ant");
    env->reset(0);
    const int torso = mj_name2id(&env->model(), mjOBJ_BODY, "torso");
    int steps_with_contact = 0;
    for (int t = 0; t < 60; ++t) {
      const double x = env->data().xpos[3 * torso];
      const auto action = random_action(env->spec(), rng);
      const Step step = env->step(action);
      double ctrl = 0, contact = 0;
      for (double a : action) ctrl += 0.5 * a * a;
      for (int i = 0; i < 6 * env->model().nbody; ++i) {
        const double f = std::clamp(env->data().cfrc_ext[i], -1.0, 1.0);
        contact += 5e-4 * f * f;
      }
      steps_with_contact += contact > 0;
      ASSERT_NEAR(step.reward, (env->data().xpos[3 * torso] - x) / 0.05 + 1.0 - ctrl - contact, 1e-9) << t;
      if (step.terminated) env->reset();  // the light ant can jump above z = 1
    }
    EXPECT_GT(steps_with_contact, 0) << "mj_rnePostConstraint must fill cfrc_ext";
  }
  {
    auto env = make_mujoco_env("humanoid");
    env->reset(0);
    const auto com_x = [&] {
      double mx = 0, m = 0;
      for (int b = 0; b < env->model().nbody; ++b) {
        mx += env->model().body_mass[b] * env->data().xipos[3 * b];
        m += env->model().body_mass[b];
      }
      return mx / m;
    };
    int steps_with_contact = 0;
    for (bool terminated = false; !terminated;) {
      const double x = com_x();
      const auto action = random_action(env->spec(), rng);
      const Step step = env->step(action);
      double ctrl = 0, contact = 0;
      for (double a : action) ctrl += 0.1 * a * a;
      for (int i = 0; i < 6 * env->model().nbody; ++i)
        contact += 5e-7 * env->data().cfrc_ext[i] * env->data().cfrc_ext[i];
      steps_with_contact += contact > 0;
      ASSERT_NEAR(step.reward, 1.25 * (com_x() - x) / 0.015 + 5.0 - ctrl - std::min(contact, 10.0), 1e-9);
      terminated = step.terminated;
    }
    EXPECT_GT(steps_with_contact, 0);
  }
}

// The paper (v4) form pays the healthy reward on the terminating step, v5 does not; every
// other step is identical. Both run on the same model file here.
TEST(EnvRewards, V5PaysNoHealthyRewardOnTheTerminatingStep) {
  struct Case {
    std::string name, model;
    double healthy;
  };
  const std::vector<Case> cases = {{"hopper", "hopper.xml", 1.0},
                                   {"walker2d", "walker2d.xml", 1.0},
                                   {"humanoid", "humanoid.xml", 5.0},
                                   {"inverted_pendulum", "inverted_pendulum.xml", 1.0}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string model = std::string(TOM_SOURCE_DIR "/assets/mujoco/") + c.model;
    auto paper = make_env(c.name, {.model_file = model});
    auto v5 = make_env(c.name + "-v5", {.model_file = model});
    std::mt19937_64 rng(3);
    paper->reset(9);
    v5->reset(9);
    bool terminated = false;
    for (int t = 0; t < 1000 && !terminated; ++t) {
      const auto action = random_action(paper->spec(), rng);
      const Step a = paper->step(action);
      const Step b = v5->step(action);
      // v5 observations may extend the paper one; the shared part must agree.
      ASSERT_TRUE(std::equal(a.obs.begin(), a.obs.end(), b.obs.begin()));
      ASSERT_EQ(a.terminated, b.terminated);
      terminated = a.terminated;
      EXPECT_DOUBLE_EQ(a.reward - b.reward, terminated ? c.healthy : 0.0) << "step " << t;
    }
    EXPECT_TRUE(terminated) << "a random policy should fall within 1000 steps";
  }
}

TEST(EnvState, SaveAndLoadContinueBitIdentically) {
  for (const std::string name : {"hopper", "ant", "humanoid-v5"}) {
    SCOPED_TRACE(name);
    auto env = make_env(name, {.max_episode_steps = 60});
    std::mt19937_64 rng(4);
    env->reset(2);
    for (int t = 0; t < 10; ++t) {
      const Step step = env->step(random_action(env->spec(), rng));
      if (step.terminated || step.truncated) env->reset();
    }
    const std::string saved = env->save_state();
    const std::mt19937_64 action_rng = rng;

    const auto continue_run = [&](Env& e) {
      std::mt19937_64 r = action_rng;
      std::vector<Step> steps;
      for (int t = 0; t < 80; ++t) {  // runs past the time limit, so the reset generator is covered
        steps.push_back(e.step(random_action(e.spec(), r)));
        if (steps.back().terminated || steps.back().truncated) steps.push_back({.obs = e.reset()});
      }
      return steps;
    };
    const auto first = continue_run(*env);
    env->load_state(saved);
    EXPECT_TRUE(same_trajectory(first, continue_run(*env)));
    auto other = make_env(name, {.max_episode_steps = 60});
    other->load_state(saved);
    EXPECT_TRUE(same_trajectory(first, continue_run(*other)));
  }
  auto hopper = make_env("hopper"), walker = make_env("walker2d");
  hopper->reset(0);
  const std::string saved = hopper->save_state();
  EXPECT_THROW(walker->load_state(saved), tom::Error);
  EXPECT_THROW(hopper->load_state(saved.substr(0, saved.size() - 1)), tom::Error);
  EXPECT_THROW(hopper->load_state(saved + "x"), tom::Error);
  EXPECT_THROW(hopper->load_state("garbage"), tom::Error);
}

}  // namespace
}  // namespace tom::envs
