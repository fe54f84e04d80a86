// End-to-end robustness: one writer per run, path and space problems read as user
// errors, divergence keeps the last good checkpoint, damaged logs are handled, and the
// kill-anywhere soak (SIGKILL at random moments and mid-checkpoint-write, resume each
// time, the same results as an uninterrupted run).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "run_util.hpp"
#include "tom/runs/checkpoint.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/run_lock.hpp"

namespace fs = std::filesystem;
using tom::test::read_csv;
using tom::test::run_tom;

namespace {

using Clock = std::chrono::steady_clock;

// Starts `tom` with the arguments in the background (output to `log`); `file_limit`
// bytes, if given, is its file size limit (a disk that fills up).
pid_t start_tom(const std::vector<std::string>& args, const fs::path& log, rlim_t file_limit = 0) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    if (file_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
      const rlimit limit{file_limit, file_limit};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    std::vector<char*> argv{const_cast<char*>(TOM_BINARY_DIR "/tom")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string text_of(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::int64_t checkpoint_step(const fs::path& dir) {
  try {
    return tom::runs::read_checkpoint(dir / "checkpoint.pt").header["step"].get<std::int64_t>();
  } catch (const std::exception&) {
    return -1;
  }
}

// Waits until the run in `dir` has a checkpoint at `step` or later (false after 5 minutes).
bool wait_for_checkpoint(const fs::path& dir, std::int64_t step) {
  for (const auto end = Clock::now() + std::chrono::minutes(5); Clock::now() < end;) {
    if (checkpoint_step(dir) >= step) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::vector<std::string> sac_args(const fs::path& out, const std::string& steps,
                                  const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"train", "--algo", "sac", "--env", "inverted_pendulum", "--steps", steps, "--seed", "3",
                                "--threads", "1", "--eval-every", "500", "--eval-episodes", "1", "--checkpoint-every",
                                "500", "--set", "sac.hidden_size=32", "--set", "sac_loop.random_steps=300", "--set",
                                "sac_loop.update_after=300", "--out", out.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// MBPO with TOM, small and quick: fits at 500 and 750 (see test_mbpo_runs.cpp).
std::vector<std::string> mbpo_tom_args(const fs::path& out, const std::string& checkpoint_every) {
  const char* objective = std::getenv("TOM_SOAK_OBJECTIVE");
  return {"train", "--family", "mbpo-paper", "--env", "inverted_pendulum", "--steps", "1000", "--seed", "5",
          "--threads", "1", "--eval-every", "250", "--eval-episodes", "1", "--checkpoint-every", checkpoint_every,
          "--model-objective", objective ? objective : "tom", "--set", "mbpo.rollout_batch_size=500", "--set", "sac.hidden_size=32",
          "--set", "ensemble.hidden_units=32", "--set", "ensemble.max_epochs=5", "--set", "tom_dual.steps=40",
          "--set", "tom_dual.hidden=32", "--set", "discriminator.passes=2", "--out", out.string()};
}

std::vector<std::string> stale_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp") != std::string::npos)
      names.push_back(entry.path().filename().string());
  return names;
}

}  // namespace

// Item 1: while `tom train` writes a run, a second writer is refused with a message naming
// the holder; `tom eval` still reads it; once the writer is killed the run resumes.
TEST(Robustness, OneWriterPerRunAndEvalStillReads) {
  const fs::path dir = tom::test::fresh_dir("one_writer");
  const pid_t writer = start_tom(sac_args(dir, "200000"), dir.string() + ".log");
  ASSERT_TRUE(wait_for_checkpoint(dir, 500)) << text_of(dir.string() + ".log");

  const fs::path second_log = dir.string() + ".second.log";
  EXPECT_EQ(run_tom({"train", "--resume", dir.string(), "--steps", "300000"}, second_log), 1);
  const std::string message = text_of(second_log);
  EXPECT_NE(message.find("is being written by another tom train (pid " + std::to_string(writer) + " on host "),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("started "), std::string::npos) << message;
  EXPECT_EQ(run_tom({"train", "--resume", dir.string()}, dir.string() + ".third.log"), 1);
  EXPECT_EQ(run_tom(sac_args(dir, "1000"), dir.string() + ".fresh.log"), 1) << "a new run over a live one";
  EXPECT_EQ(run_tom({"eval", dir.string(), "--episodes", "1"}, dir.string() + ".eval.log"), 0)
      << text_of(dir.string() + ".eval.log");

  ::kill(writer, SIGKILL);
  EXPECT_EQ(wait_status(writer), 128 + SIGKILL);
  const std::int64_t step = checkpoint_step(dir);
  ASSERT_GE(step, 500);
  EXPECT_EQ(run_tom({"train", "--resume", dir.string(), "--steps", std::to_string(step + 500)},
                    dir.string() + ".resume.log"),
            0)
      << text_of(dir.string() + ".resume.log");
  EXPECT_EQ(checkpoint_step(dir), step + 500);
}

// Item 6: paths the program cannot create or read are user errors naming the path.
TEST(Robustness, PathProblemsAreUserErrors) {
  const fs::path base = tom::test::fresh_dir("paths");
  fs::create_directories(base);
  std::ofstream(base / "plain") << "x";
  const auto expect_user_error = [&](const std::vector<std::string>& args, const std::string& part) {
    const fs::path log = base / "out.log";
    EXPECT_EQ(run_tom(args, log), 1) << args[1];
    const std::string text = text_of(log);
    EXPECT_NE(text.find("error: "), std::string::npos) << text;
    EXPECT_EQ(text.find("internal error"), std::string::npos) << text;
    EXPECT_NE(text.find(part), std::string::npos) << text;
  };
  expect_user_error(sac_args("/proc/x", "1000"), "cannot create the run directory /proc/x: ");
  expect_user_error(sac_args(base / "plain" / "run", "1000"),
                    (base / "plain" / "run").string() + ": Not a directory; a part of that path is a file");
  if (fs::is_directory("/sys/kernel"))  // not writable even for root
    expect_user_error(sac_args("/sys/kernel/tom_run", "1000"), "/sys/kernel/tom_run: ");
  expect_user_error({"train", "--resume", "/proc/x"}, "/proc/x is not a run directory");
  expect_user_error({"eval", (base / "absent").string()}, "is not a run directory");
  expect_user_error({"train", "--resume", (base / "plain").string()}, "is not a run directory");
}

// Item 6: a disk that fills up (the file size limit fails writes the same way) stops the
// run with a message; its last checkpoint stays whole and the run resumes from it.
TEST(Robustness, FullDiskStopsTheRunAndKeepsItsLastCheckpoint) {
  const fs::path dir = tom::test::fresh_dir("full_disk"), probe = tom::test::fresh_dir("full_disk_probe");
  // The checkpoint grows with the replay buffer (~70 bytes a step): a limit 16 kB above
  // its size at step 500 lets the first checkpoints through and fails a later one.
  ASSERT_EQ(run_tom(sac_args(probe, "500"), probe.string() + ".log"), 0);
  const auto limit = static_cast<rlim_t>(fs::file_size(probe / "checkpoint.pt") + 16 * 1024);
  const pid_t pid = start_tom(sac_args(dir, "3000"), dir.string() + ".log", limit);
  EXPECT_EQ(wait_status(pid), 1);
  const std::string text = text_of(dir.string() + ".log");
  EXPECT_NE(text.find("error: cannot write " + (dir / "checkpoint.pt").string() + ": File too large; "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("The run stopped; " + (dir / "checkpoint.pt").string() + " keeps the state of step "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("continue with tom train --resume"), std::string::npos) << text;
  const std::int64_t kept = checkpoint_step(dir);
  EXPECT_GE(kept, 0);
  EXPECT_LT(kept, 3000);
  EXPECT_TRUE(stale_files(dir).empty());
  ASSERT_EQ(run_tom({"train", "--resume", dir.string()}, dir.string() + ".resume.log"), 0)
      << text_of(dir.string() + ".resume.log");
  EXPECT_EQ(read_csv(dir / "metrics.csv").rows.size(), 6u);
}

// Item 5: SAC that diverges stops with a message and keeps its last good checkpoint.
// Learning rate 1e5 makes a loss non-finite (SAC's own check); 1e3 keeps the losses
// finite but overflows Adam's state, which the checkpoint's finiteness check catches.
TEST(Robustness, SacDivergenceStopsAndKeepsTheLastGoodCheckpoint) {
  for (const auto& [lr, message] : {std::pair<std::string, std::string>{"1e5", "SAC update "},
                                    {"1e3", "holds NaN or inf (a learning rate too high"}}) {
    const fs::path dir = tom::test::fresh_dir("diverge_" + lr);
    auto args = sac_args(dir, "3000", {"--set", "sac.critic_lr=" + lr, "--set", "sac.actor_lr=" + lr});
    *(std::find(args.begin(), args.end(), "--checkpoint-every") + 1) = "100";
    EXPECT_EQ(run_tom(args, dir.string() + ".log"), 1);
    const std::string text = text_of(dir.string() + ".log");
    EXPECT_NE(text.find("diverged"), std::string::npos) << text;
    EXPECT_NE(text.find(message), std::string::npos) << text;
    EXPECT_NE(text.find((dir / "checkpoint.pt").string() + " keeps the state of step "), std::string::npos) << text;
    EXPECT_GE(checkpoint_step(dir), 200) << text;  // learning starts at 300
    const auto checkpoint = tom::runs::read_checkpoint(dir / "checkpoint.pt");
    EXPECT_EQ(tom::runs::first_nonfinite_entry(checkpoint.payload), "") << "the kept checkpoint holds NaN/inf";
    EXPECT_EQ(run_tom({"eval", dir.string(), "--episodes", "1"}, dir.string() + ".eval.log"), 0)
        << text_of(dir.string() + ".eval.log");
  }
}

// Bookkeeping that is NaN until the first episode ends ("no return yet") is no divergence.
TEST(Robustness, ACheckpointBeforeTheFirstEpisodeEndsIsWritten) {
  const fs::path dir = tom::test::fresh_dir("first_step");
  EXPECT_EQ(run_tom(sac_args(dir, "1"), dir.string() + ".log"), 0) << text_of(dir.string() + ".log");
  EXPECT_EQ(checkpoint_step(dir), 1);
}

// A run killed after writing config.toml but before its first checkpoint starts over on
// --resume; a row cut short by a kill is dropped; a damaged row is named.
TEST(Robustness, EarlyKillsAndDamagedRowsAreHandled) {
  const fs::path whole = tom::test::fresh_dir("early_whole"), early = tom::test::fresh_dir("early");
  ASSERT_EQ(run_tom(sac_args(whole, "1000"), whole.string() + ".log"), 0);
  fs::create_directories(early);
  fs::copy_file(whole / "config.toml", early / "config.toml");
  std::ofstream(early / ".checkpoint.pt.tmp123456") << "half-written";
  ASSERT_EQ(run_tom({"train", "--resume", early.string()}, early.string() + ".log"), 0)
      << text_of(early.string() + ".log");
  EXPECT_NE(text_of(early.string() + ".log").find("starting it from step 0"), std::string::npos);
  tom::test::expect_same_cells(whole / "metrics.csv", early / "metrics.csv");
  EXPECT_TRUE(stale_files(early).empty());

  std::ofstream(early / "metrics.csv", std::ios::app) << "1500,12.5";  // unterminated
  ASSERT_EQ(run_tom({"train", "--resume", early.string(), "--steps", "1500"}, early.string() + ".2.log"), 0)
      << text_of(early.string() + ".2.log");
  const auto csv = read_csv(early / "metrics.csv");
  ASSERT_EQ(csv.rows.size(), 3u);
  EXPECT_EQ(csv.rows[2][0], "1500");
  EXPECT_GT(csv.rows[2].size(), 2u);

  std::string text = text_of(early / "metrics.csv");
  text.insert(text.find('\n') + 1, "abc,1\n");
  std::ofstream(early / "metrics.csv", std::ios::trunc) << text;
  EXPECT_EQ(run_tom({"train", "--resume", early.string(), "--steps", "2000"}, early.string() + ".3.log"), 1);
  EXPECT_NE(text_of(early.string() + ".3.log").find("metrics.csv line 2 does not start with a step number"),
            std::string::npos)
      << text_of(early.string() + ".3.log");
}

// Item 2: MBPO+TOM killed with SIGKILL at random moments, some while it writes a
// checkpoint, resumed each time, ends with the uninterrupted run's metrics.csv and
// weights.csv (all but the timing columns, byte for byte). TOM_SOAK_KILLS sets the
// number of kills (default 12; scripts/soak.sh runs many), TOM_SOAK_SEED the moments,
// TOM_SOAK_OBJECTIVE the model objective (default tom).
TEST(Robustness, KilledAnywhereResumesToTheUninterruptedResult) {
  const int kills = std::getenv("TOM_SOAK_KILLS") ? std::atoi(std::getenv("TOM_SOAK_KILLS")) : 12;
  const unsigned seed = std::getenv("TOM_SOAK_SEED") ? static_cast<unsigned>(std::atol(std::getenv("TOM_SOAK_SEED")))
                                                     : std::random_device{}();
  std::mt19937 rng(seed);
  const fs::path whole = tom::test::fresh_dir("soak_whole"), soak = tom::test::fresh_dir("soak");
  const auto start = Clock::now();
  // Checkpoints every 25 steps: 40 in a run, so kills while writing one are frequent and
  // each costs little progress.
  ASSERT_EQ(run_tom(mbpo_tom_args(whole, "25"), whole.string() + ".log"), 0) << text_of(whole.string() + ".log");
  const double whole_s = std::chrono::duration<double>(Clock::now() - start).count();

  const fs::path log = soak.string() + ".log";
  int killed = 0, killed_mid_write = 0, restarts = 0;
  int status = -1;
  while (true) {
    // Before config.toml exists the run has not begun: the same command starts it again.
    const bool begun = fs::exists(soak / "config.toml");
    const pid_t pid = start_tom(begun ? std::vector<std::string>{"train", "--resume", soak.string()}
                                      : mbpo_tom_args(soak, "25"),
                                log);
    ++restarts;
    if (killed >= kills) {
      status = wait_status(pid);
      break;
    }
    bool mid_write = false;
    if (killed % 2 == 0) {
      // A random moment after the start, scaled so that the kills spread over the run.
      std::uniform_real_distribution<double> delay(0.0, std::max(0.3, 3 * whole_s / kills));
      const auto until = Clock::now() + std::chrono::duration<double>(delay(rng));
      while (Clock::now() < until && waitpid(pid, &status, WNOHANG) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    } else {
      // While a checkpoint is being written: the first or the second one this start writes.
      int writes_to_skip = std::uniform_int_distribution<int>(0, 1)(rng);
      bool writing = false;
      while (waitpid(pid, &status, WNOHANG) == 0) {
        bool now_writing = false;
        for (const auto& name : fs::exists(soak) ? stale_files(soak) : std::vector<std::string>{})
          now_writing = now_writing || name.starts_with(".checkpoint.pt.tmp");
        if (now_writing && !writing && writes_to_skip-- == 0) break;
        writing = now_writing;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    if (::kill(pid, SIGKILL) != 0 || waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status)) {
      // It finished on its own before the kill.
      status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    ++killed;
    for (const auto& name : fs::exists(soak) ? stale_files(soak) : std::vector<std::string>{})
      if (name.starts_with(".checkpoint.pt.tmp")) mid_write = true;
    killed_mid_write += mid_write;
  }
  std::cout << "soak: seed " << seed << ", " << killed << " kills (" << killed_mid_write
            << " while a checkpoint was being written), " << restarts << " starts; uninterrupted run " << whole_s
            << " s, soak " << std::chrono::duration<double>(Clock::now() - start).count() - whole_s << " s\n";
  RecordProperty("kills", killed);
  RecordProperty("kills_mid_checkpoint_write", killed_mid_write);
  ASSERT_EQ(status, 0) << text_of(log);
  EXPECT_GE(killed, std::min(kills, 2)) << "the run finished before it could be killed";
  tom::test::expect_same_cells(whole / "metrics.csv", soak / "metrics.csv");
  tom::test::expect_same_cells(whole / "weights.csv", soak / "weights.csv");
  EXPECT_TRUE(stale_files(soak).empty());
  EXPECT_FALSE(tom::runs::run_lock_holder(soak));
}
