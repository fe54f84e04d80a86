// End-to-end: PETS (CEM planning on the ensemble's particles, model fits through the
// model-learning stage) resumes exactly, with TOM weights from the distilled policy, and
// learns inverted_pendulum with a planner small enough for the suite.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "run_util.hpp"

namespace fs = std::filesystem;
using tom::test::run_tom;

namespace {

// A CPU-sized planner and model: 100 sequences x 5 particles (one per elite), 15 steps,
// 3 iterations; a 3 x 64 ensemble trained on minibatches of 32 as mbrl-lib's PETS does.
std::vector<std::string> pets_args(const fs::path& out, const std::string& steps, const std::string& objective,
                                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{
      "train", "--algo", "pets", "--env", "inverted_pendulum", "--steps", steps, "--threads", "1",
      "--eval-episodes", "1", "--model-objective", objective, "--set", "cem.horizon=15", "--set",
      "cem.population=100", "--set", "cem.elites=10", "--set", "cem.iterations=3", "--set", "cem.particles=5",
      "--set", "ensemble.hidden_units=64", "--set", "ensemble.hidden_layers=3", "--set", "ensemble.batch_size=32",
      "--set", "pets.random_steps=200", "--out", out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(PetsRun, TomResumedRunMatchesUninterruptedRun) {
  const fs::path whole = tom::test::fresh_dir("pets_whole"), split = tom::test::fresh_dir("pets_split");
  const std::vector<std::string> small{"--seed", "2", "--eval-every", "150", "--checkpoint-every", "150",
                                       "--set", "tom.recent_pool=100", "--set", "tom_dual.steps=40",
                                       "--set", "tom_dual.hidden=32", "--set", "discriminator.passes=2",
                                       "--set", "distill.steps=20", "--set", "pets.train_every=100",
                                       "--set", "cem.horizon=5", "--set", "cem.population=20", "--set", "cem.elites=4"};
  ASSERT_EQ(run_tom(pets_args(whole, "450", "tom", small), whole.string() + ".log"), 0);
  ASSERT_EQ(run_tom(pets_args(split, "300", "tom", small), split.string() + ".log"), 0);
  ASSERT_EQ(run_tom({"train", "--resume", split.string(), "--steps", "450"}, split.string() + ".resume.log"), 0);
  tom::test::expect_same_cells(whole / "metrics.csv", split / "metrics.csv");
  tom::test::expect_same_cells(whole / "weights.csv", split / "weights.csv");
  // Fits at 200 (exploration ends) and every 100 steps after: 200, 300, 400.
  EXPECT_EQ(tom::test::read_csv(whole / "weights.csv").rows.size(), 3u);
  // TOM's actions come from the distilled policy, whose fit is reported.
  const auto metrics = tom::test::read_csv(whole / "metrics.csv");
  const double rmse = std::stod(metrics.rows.back()[metrics.column("distill_action_rmse")]);
  EXPECT_TRUE(rmse > 0 && rmse < 2) << rmse;
  // tom eval plans with the restored model (PETS has no agent to read alone).
  ASSERT_EQ(run_tom({"eval", whole.string(), "--episodes", "1"}, whole.string() + ".eval.log"), 0);
  EXPECT_NE(tom::test::read_text(whole.string() + ".eval.log").find("return"), std::string::npos);
}

TEST(PetsRun, RefusesAnObjectiveWithoutTheViewItNeeds) {
  const fs::path dir = tom::test::fresh_dir("pets_vagram");
  ASSERT_NE(run_tom(pets_args(dir, "300", "vagram"), dir.string() + ".log"), 0);
  EXPECT_NE(tom::test::read_text(dir.string() + ".log").find("vagram needs a value function; the pets backbone has none"),
            std::string::npos);
}

// The run stops at its first evaluation >= 950 (--stop-at-return).
TEST(PetsRun, SolvesInvertedPendulum) {
  const fs::path dir = tom::test::fresh_dir("pets_pendulum");
  ASSERT_EQ(run_tom(pets_args(dir, "5000", "mle",
                              {"--seed", "1", "--eval-every", "250", "--checkpoint-every", "5000", "--stop-at-return",
                               "950"}),
                    dir.string() + ".log"),
            0);
  tom::test::expect_stopped_at_target(dir, 950.0, 5000);
  // MLE needs no policy, so nothing is distilled and no distillation figure is reported.
  const auto header = tom::test::read_csv(dir / "metrics.csv").header;
  EXPECT_EQ(std::count(header.begin(), header.end(), "distill_action_rmse"), 0);
}

}  // namespace
