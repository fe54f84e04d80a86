// End-to-end: MBPO learns inverted_pendulum from far fewer env steps than SAC needs
// (tests/e2e/test_sac_runs.cpp uses 8000), and its runs resume exactly.
#include <gtest/gtest.h>

#include <filesystem>

#include "run_util.hpp"

namespace fs = std::filesystem;
using tom::test::read_csv;
using tom::test::run_tom;

TEST(MbpoRun, SolvesInvertedPendulumWithFewSteps) {
  const fs::path dir = tom::test::fresh_dir("mbpo_pendulum");
  ASSERT_EQ(run_tom({"train", "--family", "mbpo-paper", "--env", "inverted_pendulum", "--steps", "3000", "--seed", "0",
                     "--threads", "2", "--eval-every", "500", "--eval-episodes", "5", "--set",
                     "mbpo.rollout_batch_size=10000", "--out", dir.string()},
                    dir.string() + ".log"),
            0);
  const auto csv = read_csv(dir / "metrics.csv");
  ASSERT_FALSE(csv.rows.empty());
  const double final_return = std::stod(csv.rows.back()[csv.column("eval_return_mean")]);
  EXPECT_GE(final_return, 950.0) << "MBPO did not solve inverted_pendulum in 3000 steps";
  // The model was fitted and used: rollouts happened and its held-out error is finite.
  EXPECT_GT(std::stod(csv.rows.back()[csv.column("model_transitions")]), 0.0);
  EXPECT_GT(std::stod(csv.rows.back()[csv.column("model_fits")]), 0.0);
}

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
