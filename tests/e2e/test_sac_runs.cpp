// End-to-end: SAC learns, and a run killed with SIGKILL resumes to the same result.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "run_util.hpp"
#include "tom/runs/checkpoint.hpp"

namespace fs = std::filesystem;
using tom::test::read_csv;
using tom::test::run_tom;

namespace {

// A short, small-network SAC run; determinism needs --threads 1.
std::vector<std::string> small_sac_args(const fs::path& out) {
  return {"train", "--algo", "sac", "--env", "inverted_pendulum", "--steps", "3000", "--seed", "3", "--threads", "1",
          "--eval-every", "500", "--eval-episodes", "2", "--checkpoint-every", "500", "--set", "sac.hidden_size=32",
          "--set", "sac_loop.random_steps=300", "--set", "sac_loop.update_after=300", "--out", out.string()};
}

// Everything but the timing columns.
}  // namespace

TEST(SacRun, KilledAndResumedRunMatchesUninterruptedRun) {
  const fs::path whole = tom::test::fresh_dir("whole"), killed = tom::test::fresh_dir("killed");
  ASSERT_EQ(run_tom(small_sac_args(whole), whole.string() + ".log"), 0);

  const pid_t pid = fork();
  if (pid == 0) {
    const auto args = small_sac_args(killed);
    std::vector<char*> argv{const_cast<char*>(TOM_BINARY_DIR "/tom")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    freopen("/dev/null", "w", stdout);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Kill it without warning once it has checkpointed past the first update phase.
  bool checkpointed = false;
  for (int i = 0; i < 6000 && !checkpointed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    try {
      checkpointed = tom::runs::read_checkpoint(killed / "checkpoint.pt").header["step"].get<int>() >= 1000;
    } catch (const std::exception&) {
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(checkpointed);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_EQ(run_tom({"train", "--resume", killed.string()}, killed.string() + ".resume.log"), 0);

  ASSERT_EQ(read_csv(whole / "metrics.csv").rows.size(), 6u);
  tom::test::expect_same_cells(whole / "metrics.csv", killed / "metrics.csv");
}

TEST(SacRun, RefusesToOverwriteAndRejectsBadResumes) {
  const fs::path dir = tom::test::fresh_dir("guard");
  fs::create_directories(dir);
  std::ofstream(dir / "precious.txt") << "data";
  EXPECT_EQ(run_tom(small_sac_args(dir), dir.string() + ".log"), 1);
  EXPECT_TRUE(fs::exists(dir / "precious.txt"));
  EXPECT_FALSE(fs::exists(dir / "metrics.csv"));
  EXPECT_EQ(run_tom({"train", "--resume", dir.string()}, dir.string() + ".log2"), 1);  // no config.toml
  EXPECT_EQ(run_tom({"eval", dir.string()}, dir.string() + ".log3"), 1);
}

// SAC solves inverted_pendulum: its deterministic evaluation reaches >= 950 within 25000
// steps (seed 1 first reached 1000 at 16k and, after the update's numerics changed, at 20k;
// seed 0 at 19k: SAC needs this long on this task, while MBPO's test in
// test_mbpo_runs.cpp uses 4500 steps). The run stops at its first evaluation >= 950
// (--stop-at-return), which also tests that ending: about 2.5 minutes instead of 3.5.
TEST(SacRun, SolvesInvertedPendulum) {
  const fs::path dir = tom::test::fresh_dir("pendulum");
  ASSERT_EQ(run_tom({"train", "--algo", "sac", "--env", "inverted_pendulum", "--steps", "25000", "--seed", "1",
                     "--threads", "1", "--eval-every", "1000", "--eval-episodes", "5", "--checkpoint-every", "25000",
                     "--stop-at-return", "950", "--out", dir.string()},
                    dir.string() + ".log"),
            0);
  tom::test::expect_stopped_at_target(dir, 950.0, 25000);
}
