// VecEnv: n copies step as n single envs would, reset the step after their episode ends,
// and refuse a bad batch before any copy moves.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "tom/core/error.hpp"
#include "tom/envs/vec_env.hpp"

namespace tom::envs {
namespace {

TEST(VecEnv, CopiesStepAsSingleEnvsAndResetTheStepAfterTheirEnd) {
  EnvOptions options;
  options.max_episode_steps = 3;
  VecEnv vec("inverted_pendulum", 2, options);
  std::vector<std::unique_ptr<Env>> singles;
  for (int i = 0; i < 2; ++i) singles.push_back(make_env("inverted_pendulum", options));
  const auto first = vec.reset(7);
  for (int i = 0; i < 2; ++i) {
    const auto obs = singles[static_cast<std::size_t>(i)]->reset(7 + i);
    EXPECT_EQ(std::vector<double>(first.begin() + 4 * i, first.begin() + 4 * (i + 1)), obs);
  }
  const std::vector<double> actions{0.2, -0.4};
  VecStep step;
  for (int t = 0; t < 3; ++t) {
    step = vec.step(actions);
    for (std::size_t i = 0; i < 2; ++i) {
      const Step single = singles[i]->step(std::span<const double>(&actions[i], 1));
      EXPECT_EQ(std::vector<double>(step.obs.begin() + 4 * static_cast<long>(i), step.obs.begin() + 4 * static_cast<long>(i + 1)),
                single.obs);
      EXPECT_EQ(step.reward[i], single.reward);
      EXPECT_EQ(step.truncated[i] != 0, single.truncated);
    }
  }
  EXPECT_EQ(step.truncated, (std::vector<std::uint8_t>{1, 1}));
  step = vec.step(actions);  // the autoreset step: new episodes, reward 0, no end flags
  EXPECT_EQ(step.reward, (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(step.truncated, (std::vector<std::uint8_t>{0, 0}));
  EXPECT_EQ(step.terminated, (std::vector<std::uint8_t>{0, 0}));
  step = vec.step(actions);
  EXPECT_NE(step.reward[0], 0.0);
}

TEST(VecEnv, BadBatchesAreRefusedBeforeAnyCopyMoves) {
  EXPECT_THROW(VecEnv("hopper", 0), Error);
  EXPECT_THROW(VecEnv("hoper", 2), UnknownName);
  VecEnv vec("hopper", 2), reference("hopper", 2);
  EXPECT_THROW(vec.step(std::vector<double>(6, 0.0)), Error);  // before reset()
  vec.reset(0);
  reference.reset(0);
  std::vector<double> bad(6, 0.0);
  bad[4] = NAN;
  try {
    vec.step(bad);
    ADD_FAILURE() << "a NaN action was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("copy 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vec.step(std::vector<double>(5, 0.0)), Error);
  EXPECT_EQ(vec.step(std::vector<double>(6, 0.1)).obs, reference.step(std::vector<double>(6, 0.1)).obs);
}

}  // namespace
}  // namespace tom::envs
