#include <gtest/gtest.h>

#include "tom/backbones/collector.hpp"
#include "tom/core/error.hpp"

namespace {

using tom::backbones::Collector;
using tom::backbones::TimeLimitEnds;

// A task that never terminates and is cut by its time limit after 3 steps.
class ThreeStepEnv final : public tom::envs::Env {
 public:
  ThreeStepEnv() {
    spec_.name = "three_steps";
    spec_.obs_dim = 1;
    spec_.action_dim = 1;
    spec_.action_low = {-1.0};
    spec_.action_high = {1.0};
    spec_.max_episode_steps = 3;
  }
  const tom::envs::EnvSpec& spec() const override { return spec_; }
  std::vector<double> reset(std::optional<std::uint64_t>) override {
    steps_ = 0;
    return {0.0};
  }
  tom::envs::Step step(std::span<const double>) override {
    ++steps_;
    return {{static_cast<double>(steps_)}, 1.0, false, steps_ >= spec_.max_episode_steps};
  }
  std::string save_state() const override { return std::to_string(steps_); }
  void load_state(const std::string& bytes) override { steps_ = std::stoi(bytes); }

 private:
  tom::envs::EnvSpec spec_;
  int steps_ = 0;
};

// The terminated flags of 7 steps (two episodes cut at the limit, one running).
std::vector<float> stored_flags(TimeLimitEnds ends) {
  Collector collector(std::make_unique<ThreeStepEnv>(), 0, ends);
  tom::data::ReplayBuffer buffer(16, 1, 1);
  for (int i = 0; i < 7; ++i) collector.step({0.0}, buffer);
  const auto flags = buffer.all().terminated.contiguous();
  return {flags.data_ptr<float>(), flags.data_ptr<float>() + flags.numel()};
}

TEST(Collector, TimeLimitEndsAreStoredAsTheSettingSays) {
  EXPECT_EQ(stored_flags(TimeLimitEnds::bootstrap), std::vector<float>(7, 0.0f));
  EXPECT_EQ(stored_flags(TimeLimitEnds::terminal), (std::vector<float>{0, 0, 1, 0, 0, 1, 0}));
}

TEST(Collector, EpisodeStartsAreTheSameEitherWay) {
  for (auto ends : {TimeLimitEnds::bootstrap, TimeLimitEnds::terminal}) {
    Collector collector(std::make_unique<ThreeStepEnv>(), 0, ends);
    tom::data::ReplayBuffer buffer(16, 1, 1);
    for (int i = 0; i < 7; ++i) collector.step({0.0}, buffer);
    EXPECT_EQ(buffer.episode_start_obs().size(0), 3);
    EXPECT_EQ(collector.episodes(), 2);
  }
}

TEST(Collector, UnknownTimeLimitHandlingIsAnError) {
  EXPECT_EQ(tom::backbones::time_limit_ends_from_name("terminal"), TimeLimitEnds::terminal);
  EXPECT_THROW(tom::backbones::time_limit_ends_from_name("truncate"), tom::Error);
}

}  // namespace
