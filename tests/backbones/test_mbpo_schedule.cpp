// MBPO's SAC update schedule: bursts of updates_per_step whenever the epoch's updates so
// far are within max_updates_per_step per env step (the TOM authors' code: 20 and 5 give
// a burst of 20 on every 4th step, 5000 per 1000-step epoch); MBPO's own code never caps
// (20 on every step).
#include <gtest/gtest.h>

#include <vector>

#include "tom/backbones/mbpo_trainer.hpp"

namespace tom::backbones {
namespace {

std::vector<int> updates_per_step(int burst, double cap, int steps) {
  std::vector<int> per_step;
  std::int64_t epoch_updates = 0;
  for (int step = 0; step < steps; ++step) {
    const bool due = update_burst_due(epoch_updates, step, cap);
    per_step.push_back(due ? burst : 0);
    if (due) epoch_updates += burst;
  }
  return per_step;
}

TEST(MbpoSchedule, BurstsOfTwentyOnEveryFourthStepWithCapFive) {
  const auto per_step = updates_per_step(20, 5, 1000);
  int total = 0;
  for (int step = 0; step < 1000; ++step) {
    EXPECT_EQ(per_step[step], step % 4 == 0 ? 20 : 0) << "step " << step;
    total += per_step[step];
  }
  EXPECT_EQ(total, 5000);
}

TEST(MbpoSchedule, NoCapUpdatesOnEveryStep) {
  for (int n : updates_per_step(20, 0, 100)) EXPECT_EQ(n, 20);
  // MBPO's cap max(5, 20) = 20 never binds either.
  for (int n : updates_per_step(20, 20, 100)) EXPECT_EQ(n, 20);
}

TEST(MbpoSchedule, TenWithCapFiveBurstsOnEveryOtherStep) {
  const auto per_step = updates_per_step(10, 5, 250);
  for (int step = 0; step < 250; ++step) EXPECT_EQ(per_step[step], step % 2 == 0 ? 10 : 0) << "step " << step;
}

}  // namespace
}  // namespace tom::backbones
