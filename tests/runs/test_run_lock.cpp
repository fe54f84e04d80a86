// One writer per run directory, file errors that read as user errors, whole-line appends,
// stale temporaries, and the non-finite scan that keeps a diverged state off disk.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>

#include <torch/torch.h>

#include "tom/core/error.hpp"
#include "tom/runs/checkpoint.hpp"
#include "tom/runs/checkpoint_file.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/run_lock.hpp"
#include "tom/runs/settings_io.hpp"
#include "../support.hpp"

namespace fs = std::filesystem;
using tom::runs::RunLock;

namespace {

using tom::test::error_of;
using tom::test::temp_dir;



bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(RunLock, SecondWriterIsRefusedNamingTheHolderUntilTheFirstLetsGo) {
  const auto dir = temp_dir("lock");
  EXPECT_FALSE(tom::runs::run_lock_holder(dir));
  {
    const RunLock first(dir);
    const auto holder = tom::runs::run_lock_holder(dir);
    ASSERT_TRUE(holder);
    EXPECT_TRUE(contains(*holder, "pid " + std::to_string(::getpid()) + " on host ")) << *holder;
    EXPECT_TRUE(contains(*holder, "started 20")) << *holder;
    // flock conflicts between two opens even in one process, like two processes.
    const std::string message = error_of([&] { RunLock second(dir); });
    EXPECT_TRUE(contains(message, "is being written by another tom train (pid " + std::to_string(::getpid())))
        << message;
    EXPECT_TRUE(contains(message, "kill " + std::to_string(::getpid()))) << message;
  }
  EXPECT_FALSE(tom::runs::run_lock_holder(dir));
  EXPECT_NO_THROW(RunLock again(dir));
}

TEST(RunLock, AKilledHolderNeverBlocksTheNextWriter) {
  const auto dir = temp_dir("lock_killed");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = fork();
  if (child == 0) {
    RunLock lock(dir);
    (void)!::write(ready[1], "x", 1);
    ::pause();  // until SIGKILL: no destructor runs
    _exit(0);
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  const std::string message = error_of([&] { RunLock mine(dir); });
  EXPECT_TRUE(contains(message, "pid " + std::to_string(child))) << message;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(tom::runs::run_lock_holder(dir));
  EXPECT_NO_THROW(RunLock mine(dir));
}

TEST(RunLock, AnUncreatableLockFileIsAUserError) {
  const std::string message = error_of([] { RunLock lock("/proc/no_such_dir"); });
  EXPECT_TRUE(contains(message, "/proc/no_such_dir/writer.lock")) << message;
}

TEST(FileErrors, NameThePathTheReasonAndWhatToDo) {
  for (int err : {EACCES, EPERM, EROFS, ENOSPC, EDQUOT, EFBIG, ENOENT, ENOTDIR}) EXPECT_FALSE(tom::runs::io_advice(err).empty()) << err;
  EXPECT_TRUE(contains(tom::runs::io_advice(ENOSPC), "free some space"));
  EXPECT_TRUE(contains(tom::runs::io_advice(EACCES), "permissions"));
  EXPECT_TRUE(contains(tom::runs::io_advice(EROFS), "read-only"));

  std::string message = error_of([] { tom::runs::make_directory("/proc/x/run", "run directory"); });
  EXPECT_TRUE(contains(message, "cannot create the run directory /proc/x/run: No such file or directory; "))
      << message;
  const auto dir = temp_dir("file_errors");
  std::ofstream(dir / "plain") << "x";
  message = error_of([&] { tom::runs::make_directory(dir / "plain" / "run", "run directory"); });
  EXPECT_TRUE(contains(message, (dir / "plain" / "run").string() + ": Not a directory; a part of that path is a file"))
      << message;
  message = error_of([&] { tom::runs::write_file_atomic(dir / "missing" / "f.txt", "x"); });
  EXPECT_TRUE(contains(message, (dir / "missing").string())) << message;
  message = error_of([&] { tom::runs::read_file(dir / "absent.toml"); });
  EXPECT_TRUE(contains(message, "cannot read " + (dir / "absent.toml").string() + ": No such file")) << message;
  message = error_of([&] { tom::runs::read_file(dir); });
  EXPECT_TRUE(contains(message, "is a directory")) << message;
  EXPECT_FALSE(error_of([] { tom::runs::path_exists("/proc/x/y"); }).size());
}

// A full disk (here: the file size limit, which fails writes the same way) keeps the old
// file whole, removes the temporary and says what happened.
TEST(FileErrors, AWriteThatRunsOutOfSpaceKeepsTheOldFile) {
  const auto dir = temp_dir("full");
  tom::runs::write_file_atomic(dir / "f.bin", "old");
  const pid_t child = fork();
  if (child == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    const std::string message = error_of([&] { tom::runs::write_file_atomic(dir / "f.bin", std::string(100000, 'x')); });
    const bool ok = contains(message, "cannot write " + (dir / "f.bin").string() + ": File too large; the file size limit") &&
                    contains(message, "the previous version, if any, is kept");
    tom::runs::LineAppender log(dir / "log.csv");
    log.append_line("step,a");
    const std::string append_message = error_of([&] { log.append_line(std::string(8000, '1')); });
    if (!ok || !contains(append_message, "cannot append to"))
      std::fprintf(stderr, "messages: %s | %s\n", message.c_str(), append_message.c_str());
    _exit(ok && contains(append_message, "cannot append to") ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(tom::runs::read_file(dir / "f.bin"), "old");
  EXPECT_EQ(tom::runs::read_file(dir / "log.csv"), "step,a\n") << "a partial line was left behind";
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++entries;
  EXPECT_EQ(entries, 2u) << "a temporary was left behind";
}

TEST(Files, StaleTemporariesOfAKilledWriterAreRemoved) {
  const auto dir = temp_dir("stale");
  std::ofstream(dir / ".checkpoint.pt.tmpAb12Cd") << "half";
  std::ofstream(dir / "metrics.csv") << "step\n";
  std::ofstream(dir / ".hidden") << "mine";
  tom::runs::remove_stale_temporaries(dir);
  EXPECT_FALSE(fs::exists(dir / ".checkpoint.pt.tmpAb12Cd"));
  EXPECT_TRUE(fs::exists(dir / "metrics.csv"));
  EXPECT_TRUE(fs::exists(dir / ".hidden"));
}

TEST(Checkpoint, ANonFiniteStateIsNotWrittenAndTheEntryIsNamed) {
  const auto dir = temp_dir("nonfinite");
  const auto save = [](double value) {
    return [value](torch::serialize::OutputArchive& archive) {
      archive.write("steps", torch::tensor(std::int64_t{3}));
      // Bookkeeping in float64 may be NaN ("no episode finished yet").
      archive.write("last_return", torch::tensor(std::numeric_limits<double>::quiet_NaN(), torch::kFloat64));
      torch::serialize::OutputArchive agent;
      agent.write("policy", torch::tensor({1.0, value}, torch::kFloat32));
      archive.write("agent", agent);
    };
  };
  tom::runs::write_checkpoint(dir / "c.pt", {{"step", 1}}, save(2.0), true);
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    try {
      tom::runs::write_checkpoint(dir / "c.pt", {{"step", 2}}, save(bad), true);
      ADD_FAILURE() << "a non-finite state was written";
    } catch (const tom::runs::NonFiniteState& e) {
      EXPECT_EQ(e.entry, "agent.policy");
    }
  }
  EXPECT_EQ(tom::runs::read_checkpoint(dir / "c.pt").header["step"], 1) << "the good checkpoint was replaced";
  // Without the check (e.g. for tests) the state is written as it is.
  tom::runs::write_checkpoint(dir / "c.pt", {{"step", 3}}, save(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_EQ(tom::runs::read_checkpoint(dir / "c.pt").header["step"], 3);
}

// Found while preparing the fuzz target: a file just long enough for the checksum but not
// for both size fields made the reader look past its end.
TEST(Checkpoint, AShortFileWithAValidChecksumIsRejected) {
  for (std::size_t body = 0; body < 24; ++body) {
    std::string bytes = "TOMRL-CHECKPOINT-1\n" + std::string(body, '\0');
    const std::uint64_t hash = tom::runs::checkpoint_checksum(bytes);
    bytes.append(reinterpret_cast<const char*>(&hash), 8);
    const std::string message = error_of([&] { tom::runs::parse_checkpoint(bytes, "short.pt"); });
    EXPECT_TRUE(contains(message, "short.pt is corrupt or truncated")) << body << ": " << message;
  }
}

// LibTorch's archive reader behind a valid checksum (a file damaged on purpose, or by a
// bug that still wrote a checksum) cannot be fuzzed with clang here; damaged archives
// must still end in tom::Error, never another exception.
TEST(Checkpoint, DamagedArchivesBehindAValidChecksumAreErrors) {
  torch::serialize::OutputArchive archive, nested;
  archive.write("x", torch::arange(64, torch::kFloat32));
  nested.write("y", torch::ones({4, 4}));
  archive.write("nested", nested);
  std::ostringstream out;
  archive.save_to(out);
  const std::string payload = out.str();
  std::mt19937 rng(16);
  int loaded = 0, refused = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::string damaged = payload;
    switch (trial % 3) {
      case 0:  // flip a few bytes
        for (int k = 0; k < 1 + trial % 5; ++k) damaged[rng() % damaged.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 1:  // cut it short
        damaged.resize(rng() % damaged.size());
        break;
      default:  // overwrite a run of bytes
        for (std::size_t at = rng() % damaged.size(), k = 0; k < 16 && at + k < damaged.size(); ++k)
          damaged[at + k] = static_cast<char>(rng());
    }
    const auto checkpoint =
        tom::runs::parse_checkpoint(tom::runs::checkpoint_file_bytes({{"step", 1}}, damaged), "damaged.pt");
    try {
      checkpoint.load([](torch::serialize::InputArchive& in) {
        torch::Tensor x, y;
        in.read("x", x);
        torch::serialize::InputArchive inner;
        in.read("nested", inner);
        inner.read("y", y);
      });
      ++loaded;
    } catch (const tom::Error& e) {
      EXPECT_TRUE(contains(e.what(), "damaged.pt")) << e.what();
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << ": not a tom::Error: " << e.what();
    }
  }
  EXPECT_GT(refused, 100);
  std::cout << loaded << " damaged archives still loaded, " << refused << " refused\n";
}

// Fuzzing finding (fuzz/corpus/settings/finding_*): --set took string values that are
// not UTF-8, which config.toml cannot keep (it wrote them back as other characters).
TEST(SettingsFinding, NonUtf8OverrideIsRefused) {
  std::string device = "cpu";
  const std::vector<tom::SettingRef> fields{{"run.device", &device, "free text", std::nullopt, std::nullopt}};
  try {
    tom::runs::apply_overrides(fields, {"run.device=\x92" "999"});
    ADD_FAILURE() << "a stray continuation byte was accepted";
  } catch (const tom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("run.device=\\x92999"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tom::runs::apply_overrides(fields, {"run.device=\xed\xaa\xaa"}), tom::Error);  // a surrogate
  EXPECT_THROW(tom::runs::apply_overrides(fields, {"run.device=\xc0\xaf"}), tom::Error);      // overlong
  EXPECT_THROW(tom::runs::apply_overrides(fields, {"run.device=ab\xe2\x82"}), tom::Error);    // cut short
  EXPECT_EQ(device, "cpu");
  tom::runs::apply_overrides(fields, {"run.device=caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"});  // é € 😀
  EXPECT_EQ(device, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}
