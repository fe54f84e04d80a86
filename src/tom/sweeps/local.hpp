#pragma once
// `tom sweep`: a grid of `tom train` runs, one run directory per cell, run by N local
// worker processes. The sweep directory keeps `sweep.json` (the grid and the exact
// `tom train` command of every cell) and `logs/` (each cell's output, pid while running,
// exit status). Running the same sweep again continues it: finished cells are skipped,
// cells with a checkpoint resume from it (`tom train --resume`, exact), cells that died
// before their first checkpoint start again. No LibTorch here.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tom::runs {

struct SweepSpec {
  std::vector<std::string> envs;        // --env values (at least one)
  std::vector<std::string> algos;       // --algo values (optional axis)
  std::vector<std::string> objectives;  // --model-objective values (optional axis)
  std::vector<std::int64_t> seeds{0};
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;  // extra axes: setting -> values
  std::string family, steps, eval_every, eval_episodes, checkpoint_every, config_file, device;
  std::vector<std::string> sets;        // --set applied to every cell
};

// "0-2" -> 0,1,2; "0,3,5" -> 0,3,5; "1-2,7" -> 1,2,7.
std::vector<std::int64_t> parse_seeds(const std::string& text);
// A sweep file (TOML): keys family, steps, eval_every, eval_episodes, checkpoint_every,
// device, env, algo, model_objective (string or array), seeds ("0-2" or an array), set
// (array of "section.name=value"), and a table [grid] of setting = [values].
SweepSpec read_sweep_file(const std::filesystem::path& file);

struct SweepCell {
  std::string name;                   // also its directory under the sweep: "hopper/tom/seed0"
  std::vector<std::string> train_args;  // `tom train` arguments without --threads and --out
};
std::vector<SweepCell> expand_cells(const SweepSpec& spec);

// Runs `program config` with each distinct cell's flags (seeds aside); throws tom::Error
// naming the cell and the problem (unknown setting, bad value, unknown task) if one is refused.
void check_cells(const std::vector<SweepCell>& cells, const std::filesystem::path& program);

// Writes <out>/sweep.json: every cell's name, `tom train` arguments and exact command
// (with --threads `threads` and --out), plus `extra` fields. Throws tom::Error if `out`
// holds a different sweep or is a non-empty directory that is not a sweep.
void write_sweep_record(const std::vector<SweepCell>& cells, const std::filesystem::path& out,
                        const std::filesystem::path& program, int threads, const nlohmann::json& extra);

struct SweepOptions {
  std::filesystem::path out;
  int jobs = 1;
  int cores = 0;  // 0: available_cores(); each worker gets --threads max(1, cores / jobs)
  std::filesystem::path tom_program;  // the `tom` binary the workers run
};

// Runs (or continues) the sweep; returns the number of cells that are not finished
// (failed or interrupted). Throws tom::Error if `out` holds a different sweep.
// SIGINT/SIGTERM: every worker gets SIGTERM and stops with a checkpoint; `interrupted`
// is then set.
int run_sweep_local(const std::vector<SweepCell>& cells, const SweepOptions& options, bool& interrupted);

struct CellStatus {
  std::string name;
  std::int64_t steps_done = 0, steps_total = 0;  // last evaluated step, budget
  double last_return = 0;
  bool has_return = false;
  std::string state;  // done, running, interrupted, failed (exit N), stopped, pending
};
std::vector<CellStatus> sweep_status(const std::filesystem::path& out);
std::string status_table(const std::vector<CellStatus>& cells);

}  // namespace tom::runs
