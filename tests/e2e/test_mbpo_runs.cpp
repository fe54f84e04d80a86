// End-to-end: an MBPO run (model fits, rollouts, mixed batches) resumed from its
// checkpoint reproduces the uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>

#include "run_util.hpp"

namespace fs = std::filesystem;
using tom::test::read_csv;
using tom::test::run_tom;

TEST(MbpoRun, ResumedRunMatchesUninterruptedRun) {
  const fs::path whole = tom::test::fresh_dir("mbpo_whole"), split = tom::test::fresh_dir("mbpo_split");
  const auto args = [](const fs::path& out, const std::string& steps) {
    return std::vector<std::string>{"train", "--family", "mbpo-paper", "--env", "inverted_pendulum", "--steps", steps,
                                    "--seed", "5", "--threads", "1", "--eval-every", "250", "--eval-episodes", "1",
                                    "--checkpoint-every", "250", "--set", "mbpo.rollout_batch_size=500", "--set",
                                    "sac.hidden_size=32", "--set", "ensemble.hidden_units=32", "--set",
                                    "ensemble.max_epochs=5", "--out", out.string()};
  };
  ASSERT_EQ(run_tom(args(whole, "1000"), whole.string() + ".log"), 0);
  ASSERT_EQ(run_tom(args(split, "750"), split.string() + ".log"), 0);
  ASSERT_EQ(run_tom({"train", "--resume", split.string(), "--steps", "1000"}, split.string() + ".resume.log"), 0);
  const auto a = read_csv(whole / "metrics.csv"), b = read_csv(split / "metrics.csv");
  ASSERT_EQ(a.rows.size(), b.rows.size());
  for (std::size_t r = 0; r < a.rows.size(); ++r)
    for (std::size_t c = 0; c < a.header.size(); ++c) {
      const auto& name = a.header[c];
      if (name == "wall_s" || name == "steps_per_s" || name.starts_with("time_")) continue;
      EXPECT_EQ(a.rows[r][c], b.rows[r][c]) << name << " at row " << r;
    }
}
