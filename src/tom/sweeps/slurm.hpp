#pragma once
// `tom sweep --backend slurm`: one Slurm job array for the whole grid, one array task
// per cell. Each task runs its cell exactly as the local backend would (new run, or
// `tom train --resume` from the cell's checkpoint, or nothing if it is finished), so a
// requeued or resubmitted task continues where it stopped; Slurm's SIGTERM before a
// requeue or at the time limit makes `tom train` write a checkpoint first.
// No LibTorch here.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tom/sweeps/local.hpp"

namespace tom::runs {

struct SlurmOptions {
  std::filesystem::path out;
  std::string partition;  // empty: the cluster's default
  std::string time;       // e.g. 02:00:00; empty: the partition's default
  int cpus_per_task = 1;  // also each cell's --threads
  std::filesystem::path tom_program;  // the `tom` binary the tasks run (default: this one)
  bool submit = true;     // false: write the script only
  bool check = true;      // check every cell's settings with `tom config` first
};

// Writes <out>/sweep.json (as the local backend does) and <out>/slurm/sweep.sbatch and,
// if `submit`, runs `sbatch --parsable` on it; returns the job id ("" if not submitted).
std::string write_and_submit_slurm(const std::vector<SweepCell>& cells, const SlurmOptions& options);

// Array task index -> Slurm state (PENDING, RUNNING, ...) of the sweep's job, from
// squeue (and sacct where accounting is on). Empty when Slurm cannot be asked.
std::map<int, std::string> slurm_task_states(const std::string& job_id);

}  // namespace tom::runs
