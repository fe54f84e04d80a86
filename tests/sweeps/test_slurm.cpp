// `tom sweep --backend slurm`'s job script (written without submitting; the real
// submission is scripts/slurm_test.sh, on a Slurm started for it).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tom/core/error.hpp"
#include "tom/sweeps/slurm.hpp"

namespace fs = std::filesystem;
using namespace tom::runs;

TEST(SweepSlurm, WritesOneArrayTaskPerCellThatResumesFromItsCheckpoint) {
  const fs::path out = fs::temp_directory_path() / ("tom_slurm_script_" + std::to_string(::getpid()));
  fs::remove_all(out);
  SweepSpec spec;
  spec.envs = {"inverted_pendulum"};
  spec.objectives = {"mle", "tom"};
  spec.seeds = {0, 1, 2};
  spec.steps = "600";
  spec.sets = {"sac.hidden_size=32"};
  const auto cells = expand_cells(spec);
  SlurmOptions o;
  o.out = out;
  o.partition = "short";
  o.time = "01:30:00";
  o.cpus_per_task = 4;
  o.tom_program = "/opt/tom/bin/tom";
  o.submit = false;
  o.check = false;  // /opt/tom/bin/tom does not exist here
  EXPECT_EQ(write_and_submit_slurm(cells, o), "");
  std::ifstream in(out / "slurm" / "sweep.sbatch");
  std::stringstream text;
  text << in.rdbuf();
  const std::string script = text.str();
  for (const char* line : {"#SBATCH --array=0-5\n", "#SBATCH --cpus-per-task=4\n", "#SBATCH --partition=short\n",
                           "#SBATCH --time=01:30:00\n", "#SBATCH --requeue\n", "tom='/opt/tom/bin/tom'\n",
                           "  5) cell='inverted_pendulum/tom/seed2'; args=( 'train' '--env' 'inverted_pendulum' "
                           "'--model-objective' 'tom' '--seed' '2' '--steps' '600' '--set' 'sac.hidden_size=32' ) ;;\n",
                           "exec \"$tom\" train --resume \"$dir\"", "--threads 4 --out \"$dir\"\n"})
    EXPECT_NE(script.find(line), std::string::npos) << line << "\n--- in ---\n" << script;
  EXPECT_TRUE(fs::exists(out / "sweep.json"));
  // The same directory refuses another grid; bad options are named.
  spec.steps = "700";
  EXPECT_THROW(write_and_submit_slurm(expand_cells(spec), o), tom::Error);
  spec.steps = "600";
  o.time = "1 hour";
  EXPECT_THROW(write_and_submit_slurm(cells, o), tom::Error);
  o.time = "";
  o.partition = "a b";
  EXPECT_THROW(write_and_submit_slurm(cells, o), tom::Error);
  fs::remove_all(out);
}
