// `tom sweep`'s grid: seeds, cells and their commands, sweep files, the status table.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tom/core/error.hpp"
#include "tom/sweeps/local.hpp"

namespace fs = std::filesystem;
using namespace tom::runs;

TEST(SweepLocal, SeedsParseRangesAndLists) {
  EXPECT_EQ(parse_seeds("0-2"), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(parse_seeds("3"), (std::vector<std::int64_t>{3}));
  EXPECT_EQ(parse_seeds("1-2,7"), (std::vector<std::int64_t>{1, 2, 7}));
  EXPECT_THROW(parse_seeds("2-1"), tom::Error);
  EXPECT_THROW(parse_seeds("a"), tom::Error);
  EXPECT_THROW(parse_seeds("1,1"), tom::Error);
  EXPECT_THROW(parse_seeds("-1"), tom::Error);
  EXPECT_THROW(parse_seeds(""), tom::Error);
}

TEST(SweepLocal, CellsAreTheGridWithReadableNamesAndExactCommands) {
  SweepSpec spec;
  spec.envs = {"hopper", "walker2d"};
  spec.objectives = {"mle", "tom"};
  spec.seeds = {0, 1};
  spec.family = "tom-paper";
  spec.steps = "50000";
  spec.sets = {"mbpo.rollout_batch_size=10000"};
  const auto cells = expand_cells(spec);
  ASSERT_EQ(cells.size(), 8u);
  EXPECT_EQ(cells[0].name, "hopper/mle/seed0");
  EXPECT_EQ(cells[1].name, "hopper/mle/seed1");
  EXPECT_EQ(cells[7].name, "walker2d/tom/seed1");
  EXPECT_EQ(cells[7].train_args,
            (std::vector<std::string>{"train", "--env", "walker2d", "--model-objective", "tom", "--seed", "1",
                                      "--family", "tom-paper", "--steps", "50000", "--set",
                                      "mbpo.rollout_batch_size=10000"}));
  spec.grid = {{"sac.lr", {"0.001", "0.0003"}}};
  const auto more = expand_cells(spec);
  ASSERT_EQ(more.size(), 16u);
  EXPECT_EQ(more[2].name, "hopper/mle/sac.lr=0.0003/seed0");
  spec.envs.clear();
  EXPECT_THROW(expand_cells(spec), tom::Error);
}

TEST(SweepLocal, SweepFileGivesTheSameGridAsFlags) {
  const fs::path file = fs::temp_directory_path() / ("tom_sweep_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(file) << "family = \"tom-paper\"\nenv = [\"hopper\", \"walker2d\"]\nmodel_objective = [\"mle\", "
                         "\"tom\"]\nseeds = \"0-1\"\nsteps = 50000\nset = [\"mbpo.rollout_batch_size=10000\"]\n";
  const auto from_file = expand_cells(read_sweep_file(file));
  SweepSpec spec;
  spec.envs = {"hopper", "walker2d"};
  spec.objectives = {"mle", "tom"};
  spec.seeds = {0, 1};
  spec.family = "tom-paper";
  spec.steps = "50000";
  spec.sets = {"mbpo.rollout_batch_size=10000"};
  const auto from_flags = expand_cells(spec);
  ASSERT_EQ(from_file.size(), from_flags.size());
  for (std::size_t i = 0; i < from_file.size(); ++i) {
    EXPECT_EQ(from_file[i].name, from_flags[i].name);
    EXPECT_EQ(from_file[i].train_args, from_flags[i].train_args);
  }
  std::ofstream(file) << "envs = [\"hopper\"]\n";
  try {
    read_sweep_file(file);
    ADD_FAILURE() << "no error";
  } catch (const tom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'envs'"), std::string::npos) << e.what();
  }
  fs::remove(file);
  EXPECT_THROW(read_sweep_file(file), tom::Error);
}

TEST(SweepLocal, StatusReadsRunDirectoriesAndExitCodes) {
  const fs::path out = fs::temp_directory_path() / ("tom_sweep_status_" + std::to_string(::getpid()));
  fs::remove_all(out);
  EXPECT_THROW(sweep_status(out), tom::Error);
  fs::create_directories(out / "logs");
  std::ofstream(out / "sweep.json")
      << R"({"cells": [{"name": "a/seed0"}, {"name": "a/seed1"}, {"name": "a/seed2"}, {"name": "a/seed3"}]})";
  fs::create_directories(out / "a" / "seed0");
  std::ofstream(out / "a" / "seed0" / "config.toml") << "[run]\nsteps = 1000\n";
  std::ofstream(out / "a" / "seed0" / "metrics.csv") << "step,eval_return_mean\n500,10\n1000,12.5\n";
  fs::create_directories(out / "a" / "seed1");
  std::ofstream(out / "a" / "seed1" / "config.toml") << "[run]\nsteps = 1000\n";
  std::ofstream(out / "a" / "seed1" / "metrics.csv") << "step,eval_return_mean\n500,7\n";
  std::ofstream(out / "logs" / "a__seed1.exit") << "130\n";
  // Stopped early at its target return (run.stop_at_return): finished, budget or not.
  fs::create_directories(out / "a" / "seed3");
  std::ofstream(out / "a" / "seed3" / "config.toml")
      << "[run]\nsteps = 1000\nstop_at_return = true\ntarget_return = 6.5\n";
  std::ofstream(out / "a" / "seed3" / "metrics.csv") << "step,eval_return_mean\n500,7\n";
  const auto cells = sweep_status(out);
  ASSERT_EQ(cells.size(), 4u);
  EXPECT_EQ(cells[0].state, "done");
  EXPECT_EQ(cells[0].steps_done, 1000);
  EXPECT_DOUBLE_EQ(cells[0].last_return, 12.5);
  EXPECT_EQ(cells[1].state, "interrupted");
  EXPECT_EQ(cells[1].steps_done, 500);
  EXPECT_EQ(cells[2].state, "pending");
  EXPECT_EQ(cells[3].state, "done");
  EXPECT_EQ(cells[3].steps_done, 500);
  const std::string table = status_table(cells);
  EXPECT_NE(table.find("a/seed0"), std::string::npos);
  EXPECT_NE(table.find("12.50"), std::string::npos);
  EXPECT_NE(table.find("2 of 4 cells done"), std::string::npos);
  fs::remove_all(out);
}
