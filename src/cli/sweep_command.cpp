// tom sweep: a grid of `tom train` runs on local worker processes; tom sweep status DIR.
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/error.hpp"
#include "tom/runs/config.hpp"
#include "tom/sweeps/local.hpp"
#include "tom/sweeps/slurm.hpp"

namespace tom::cli {

namespace {

struct SweepArgs {
  std::string file, out, seeds;
  std::vector<std::string> envs, algos, objectives, grid;
  runs::SweepSpec spec;  // the flags' single values
  int jobs = 1, cores = 0;
  std::string status_dir;
  std::string backend = "local";
  runs::SlurmOptions slurm;
  bool no_submit = false;
};

void add_sweep_options(CLI::App* cmd, SweepArgs& args) {
  cmd->add_option("--file", args.file, "sweep file (TOML: env, model_objective, seeds, steps, set, [grid], ...)");
  cmd->add_option("--env", args.envs, "tasks (comma-separated)")->delimiter(',');
  cmd->add_option("--algo", args.algos, "backbones (comma-separated): sac, mbpo, pets")->delimiter(',');
  cmd->add_option("--model-objective", args.objectives, "model objectives (comma-separated): mle, tom, pmac, vagram")
      ->delimiter(',');
  cmd->add_option("--seeds", args.seeds, "seeds: 0-2, or 0,1,5 (default 0)");
  cmd->add_option("--grid", args.grid, "any setting as an axis: section.name=v1,v2 (repeatable)");
  cmd->add_option("--family", args.spec.family, "setting family of a paper: " + join(runs::family_names()));
  cmd->add_option("--steps", args.spec.steps, "environment steps per cell");
  cmd->add_option("--eval-every", args.spec.eval_every, "env steps between evaluations");
  cmd->add_option("--eval-episodes", args.spec.eval_episodes, "episodes per evaluation");
  cmd->add_option("--checkpoint-every", args.spec.checkpoint_every, "env steps between checkpoints");
  cmd->add_option("--device", args.spec.device, "cpu, cuda or cuda:N");
  cmd->add_option("--config", args.spec.config_file, "TOML settings file applied to every cell")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", args.spec.sets, "section.name=value for every cell (repeatable)");
  cmd->add_option("--out", args.out, "sweep directory");
  cmd->add_option("--jobs", args.jobs, "worker processes; each gets --threads max(1, cores / jobs)")
      ->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--cores", args.cores, "cores to share between the workers (default: all this process may use)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--backend", args.backend, "local (worker processes here) or slurm (one job array, sbatch)")
      ->capture_default_str()->check(CLI::IsMember({"local", "slurm"}));
  cmd->add_option("--partition", args.slurm.partition, "slurm: partition");
  cmd->add_option("--time", args.slurm.time, "slurm: time limit per cell, e.g. 02:00:00");
  cmd->add_option("--cpus-per-task", args.slurm.cpus_per_task, "slurm: CPUs per cell (also its --threads)")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_flag("--no-submit", args.no_submit, "slurm: write the job script but do not call sbatch");
}

// The sweep file's spec (if any) with the flags added: lists and --grid axes replace or
// extend it, single values override it.
runs::SweepSpec sweep_spec(const SweepArgs& args) {
  runs::SweepSpec spec = args.file.empty() ? runs::SweepSpec{} : runs::read_sweep_file(args.file);
  const auto& f = args.spec;
  if (!args.envs.empty()) spec.envs = args.envs;
  if (!args.algos.empty()) spec.algos = args.algos;
  if (!args.objectives.empty()) spec.objectives = args.objectives;
  if (!args.seeds.empty()) spec.seeds = runs::parse_seeds(args.seeds);
  for (const auto& g : args.grid) {
    const auto eq = g.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == g.size()) fail("--grid '{}' is not section.name=v1,v2", g);
    std::vector<std::string> values;
    std::string item;
    std::stringstream in(g.substr(eq + 1));
    while (std::getline(in, item, ',')) values.push_back(item);
    spec.grid.emplace_back(g.substr(0, eq), values);
  }
  for (auto [to, from] : {std::pair{&spec.family, &f.family}, {&spec.steps, &f.steps},
                          {&spec.eval_every, &f.eval_every}, {&spec.eval_episodes, &f.eval_episodes},
                          {&spec.checkpoint_every, &f.checkpoint_every}, {&spec.device, &f.device},
                          {&spec.config_file, &f.config_file}})
    if (!from->empty()) *to = *from;
  spec.sets.insert(spec.sets.end(), f.sets.begin(), f.sets.end());
  if (spec.envs.empty()) fail("tom sweep needs --env (or env in the --file)");
  return spec;
}

void run_on_slurm(const std::vector<runs::SweepCell>& cells, const SweepArgs& args) {
  auto slurm = args.slurm;
  slurm.out = args.out;
  slurm.submit = !args.no_submit;
  const std::string job = runs::write_and_submit_slurm(cells, slurm);
  fmt::print("{} cells: {}/slurm/sweep.sbatch\n", cells.size(), args.out);
  if (!job.empty()) fmt::print("submitted job array {}; follow it with: tom sweep status {}\n", job, args.out);
}

// Runs the cells on worker processes here, then prints their table; exits 130 when a
// signal stopped the sweep (the cells keep their checkpoints).
void run_locally(const std::vector<runs::SweepCell>& cells, const SweepArgs& args) {
  runs::SweepOptions options;
  options.out = args.out;
  options.jobs = args.jobs;
  options.cores = args.cores;
  bool interrupted = false;
  const int unfinished = runs::run_sweep_local(cells, options, interrupted);
  fmt::print("{}", runs::status_table(runs::sweep_status(args.out)));
  if (interrupted) {
    fmt::print("sweep interrupted; run the same command again to continue from the checkpoints\n");
    std::exit(130);
  }
  if (unfinished > 0) fail("{} cell(s) did not finish; see {}/logs", unfinished, args.out);
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand(
      "sweep", "run a grid of `tom train` runs (one run directory per cell); again to continue; `sweep status DIR`");
  add_sweep_options(cmd, *args);
  auto* status = cmd->add_subcommand("status", "table of a sweep's cells: steps done, last return, state");
  status->add_option("dir", args->status_dir, "sweep directory")->required();
  status->callback([args] { fmt::print("{}", runs::status_table(runs::sweep_status(args->status_dir))); });
  cmd->require_subcommand(0, 1);
  cmd->callback([args, status, cmd] {
    if (status->parsed()) return;
    if (args->out.empty()) fail("tom sweep needs --out DIR (the sweep directory)");
    const auto cells = runs::expand_cells(sweep_spec(*args));
    if (args->backend == "slurm") return run_on_slurm(cells, *args);
    for (const char* flag : {"--partition", "--time", "--cpus-per-task", "--no-submit"})
      if (cmd->count(flag) > 0) fail("{} belongs to --backend slurm", flag);
    run_locally(cells, *args);
  });
}

}  // namespace tom::cli
