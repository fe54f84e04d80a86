// End-to-end: `tom sweep` runs a small grid (and continues it exactly after Ctrl-C),
// `tom sweep status` reports it, `tom compare` and `tom plot` read it.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "run_util.hpp"
#include "tom/figures/plots.hpp"

namespace fs = std::filesystem;
using tom::test::read_csv;
using tom::test::run_tom;

namespace {

// Two SAC cells on inverted_pendulum (seeds 0 and 1), small networks, one thread each.
std::vector<std::string> sweep_args(const fs::path& out) {
  return {"sweep", "--algo", "sac", "--env", "inverted_pendulum", "--seeds", "0-1", "--steps", "1500",
          "--eval-every", "500", "--eval-episodes", "2", "--checkpoint-every", "250", "--set", "sac.hidden_size=32",
          "--set", "sac_loop.random_steps=300", "--set", "sac_loop.update_after=300", "--jobs", "2", "--cores", "2",
          "--out", out.string()};
}

}  // namespace

TEST(SweepComparePlot, InterruptedSweepContinuesExactlyThenComparesAndPlots) {
  const fs::path out = tom::test::fresh_dir("sweep");
  // Start the sweep, stop it with SIGINT once both cells have checkpointed.
  const pid_t pid = fork();
  if (pid == 0) {
    const auto args = sweep_args(out);
    std::vector<char*> argv{const_cast<char*>(TOM_BINARY_DIR "/tom")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen((out.string() + ".first.log").c_str(), "w", stdout);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const fs::path cell0 = out / "inverted_pendulum" / "sac" / "seed0", cell1 = out / "inverted_pendulum" / "sac" / "seed1";
  bool checkpointed = false;
  for (int i = 0; i < 12000 && !checkpointed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    checkpointed = fs::exists(cell0 / "checkpoint.pt") && fs::exists(cell1 / "checkpoint.pt");
  }
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(checkpointed);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 0) GTEST_SKIP() << "the sweep finished before it could be interrupted";
  ASSERT_EQ(WEXITSTATUS(status), 130) << tom::test::read_text(out.string() + ".first.log");
  const std::string stopped = tom::test::read_text(out.string() + ".first.log");
  EXPECT_NE(stopped.find("interrupted"), std::string::npos) << stopped;

  // The record names every cell's exact command.
  const std::string record = tom::test::read_text(out / "sweep.json");
  EXPECT_NE(record.find("\"inverted_pendulum/sac/seed1\""), std::string::npos);
  EXPECT_NE(record.find("\"--threads\""), std::string::npos);

  // The same command continues; a second repeat runs nothing.
  ASSERT_EQ(run_tom(sweep_args(out), out.string() + ".second.log"), 0) << tom::test::read_text(out.string() + ".second.log");
  const std::string second = tom::test::read_text(out.string() + ".second.log");
  EXPECT_NE(second.find("resuming"), std::string::npos) << second;
  ASSERT_EQ(run_tom(sweep_args(out), out.string() + ".third.log"), 0);
  const std::string third = tom::test::read_text(out.string() + ".third.log");
  EXPECT_NE(third.find("2 already finished, 0 to run"), std::string::npos) << third;

  // The interrupted cell equals the same cell run without interruption.
  const fs::path whole = tom::test::fresh_dir("sweep_whole");
  ASSERT_EQ(run_tom({"train", "--algo", "sac", "--env", "inverted_pendulum", "--seed", "1", "--steps", "1500",
                     "--eval-every", "500", "--eval-episodes", "2", "--checkpoint-every", "250", "--set",
                     "sac.hidden_size=32", "--set", "sac_loop.random_steps=300", "--set",
                     "sac_loop.update_after=300", "--threads", "1", "--out", whole.string()},
                    whole.string() + ".log"),
            0);
  tom::test::expect_same_cells(whole / "metrics.csv", cell1 / "metrics.csv");

  // Status: both done at 1500.
  ASSERT_EQ(run_tom({"sweep", "status", out.string()}, out.string() + ".status.log"), 0);
  const std::string table = tom::test::read_text(out.string() + ".status.log");
  EXPECT_NE(table.find("2 of 2 cells done"), std::string::npos) << table;
  EXPECT_NE(table.find("inverted_pendulum/sac/seed0"), std::string::npos) << table;

  // A cell whose settings `tom train` would refuse stops the sweep before anything runs.
  const fs::path bad = tom::test::fresh_dir("sweep_bad");
  EXPECT_EQ(run_tom({"sweep", "--env", "inverted_pendulum", "--model-objective", "mle,nosuch", "--out", bad.string()},
                    bad.string() + ".log"),
            1);
  const std::string refused = tom::test::read_text(bad.string() + ".log");
  EXPECT_NE(refused.find("cell inverted_pendulum/nosuch/seed0: its settings are refused"), std::string::npos)
      << refused;
  EXPECT_FALSE(fs::exists(bad));

  // A different grid in the same directory is refused.
  auto other = sweep_args(out);
  other[8] = "2000";
  EXPECT_EQ(run_tom(other, out.string() + ".other.log"), 1);
  EXPECT_NE(tom::test::read_text(out.string() + ".other.log").find("holds a different sweep"), std::string::npos);

  // Compare: one arm, two seeds, the Markdown and CSV tables.
  ASSERT_EQ(run_tom({"compare", out.string(), "--csv", (out / "compare.csv").string(), "--md",
                     (out / "compare.md").string()},
                    out.string() + ".compare.log"),
            0)
      << tom::test::read_text(out.string() + ".compare.log");
  const std::string md = tom::test::read_text(out / "compare.md");
  EXPECT_NE(md.find("| sac on inverted_pendulum | 1500 | 2 |"), std::string::npos) << md;
  const auto csv = read_csv(out / "compare.csv");
  EXPECT_EQ(csv.rows.size(), 4u);  // steps 500, 1000, 1500 and the AUC
  EXPECT_EQ(run_tom({"compare", out.string(), "--metric", "nope"}, out.string() + ".bad.log"), 1);
  EXPECT_NE(tom::test::read_text(out.string() + ".bad.log").find("has no column 'nope'"), std::string::npos);
  EXPECT_EQ(run_tom({"compare", (out / "nosuch").string()}, out.string() + ".bad2.log"), 1);
  EXPECT_NE(tom::test::read_text(out.string() + ".bad2.log").find("does not exist"), std::string::npos);

  // Plot: the learning curve (SAC runs have no weights or model error).
  if (std::system("gnuplot --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "gnuplot is not installed";
  ASSERT_EQ(run_tom({"plot", out.string(), "--figures", "curves", "--width", "800", "--height", "500"},
                    out.string() + ".plot.log"),
            0)
      << tom::test::read_text(out.string() + ".plot.log");
  const fs::path png = out / "plots" / "curves_inverted_pendulum.png";
  ASSERT_TRUE(fs::exists(png));
  EXPECT_EQ(tom::runs::image_size(png), std::make_pair(800, 500));
  fs::remove_all(out);
  fs::remove_all(whole);
}
