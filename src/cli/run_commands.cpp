// tom train, tom eval, tom config, tom model-error: thin wrappers over tom::runs.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/error.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/results/model_errors.hpp"
#include "tom/runs/run.hpp"

namespace tom::cli {
namespace {

// Flags shared by `train` and `config`; each becomes a `section.name=value` override,
// so flags, --set and config files are parsed and checked by one piece of code.
struct ConfigFlags {
  std::string algo, env = "hopper", steps, seed, threads, device, precision, eval_every, eval_episodes, checkpoint_every;
  std::string config_file, family, model_objective, stop_at_return;
  std::vector<std::string> sets;

  void add_to(CLI::App& cmd) {
    cmd.add_option("--algo", algo, "backbone: sac, mbpo or pets");
    cmd.add_option("--family", family, "setting family of a paper: " + join(runs::family_names()));
    cmd.add_option("--model-objective", model_objective, "how the model is learned: mle, tom, pmac or vagram");
    cmd.add_option("--env", env, "task (see tom envs)")->capture_default_str();
    cmd.add_option("--steps", steps, "environment steps");
    cmd.add_option("--seed", seed, "random seed");
    cmd.add_option("--threads", threads, "CPU threads (default: every core this process may use); 1 is the deterministic reference mode");
    cmd.add_option("--device", device, "cpu, cuda or cuda:N");
    cmd.add_option("--precision", precision, "matrix products: fp32 (default), fp32-fused or bf16 (CPUs with AVX512-BF16)");
    cmd.add_option("--eval-every", eval_every, "env steps between evaluations");
    cmd.add_option("--eval-episodes", eval_episodes, "episodes per evaluation");
    cmd.add_option("--checkpoint-every", checkpoint_every, "env steps between checkpoints");
    cmd.add_option("--stop-at-return", stop_at_return,
                   "end the run at the first evaluation whose mean return reaches this (run.stop_at_return)");
    cmd.add_option("--config", config_file, "TOML file of settings, applied over the task's defaults")
        ->check(CLI::ExistingFile);
    cmd.add_option("--set", sets, "override any setting: section.name=value (repeatable; see tom config)");
  }

  runs::ConfigSources sources() const {
    runs::ConfigSources out;
    out.env = env;
    out.family = family;
    out.user_file = config_file;
    out.overrides = sets;
    const std::pair<const char*, const std::string*> flags[] = {
        {"run.algo", &algo},         {"run.steps", &steps},       {"run.seed", &seed},
        {"run.threads", &threads},   {"run.device", &device},     {"run.precision", &precision},
        {"run.eval_every", &eval_every},
        {"run.eval_episodes", &eval_episodes}, {"run.checkpoint_every", &checkpoint_every},
        {"objective.name", &model_objective}};
    for (const auto& [key, value] : flags)
      if (!value->empty()) out.overrides.push_back(std::string(key) + "=" + *value);
    if (!stop_at_return.empty()) {
      out.overrides.push_back("run.stop_at_return=true");
      out.overrides.push_back("run.target_return=" + stop_at_return);
    }
    return out;
  }
};

}  // namespace

void add_run_commands(CLI::App& app) {
  auto flags = std::make_shared<ConfigFlags>();
  auto out = std::make_shared<std::string>();
  auto resume = std::make_shared<std::string>();
  auto* train = app.add_subcommand("train", "train an agent; writes a run directory (config, metrics, checkpoint)");
  flags->add_to(*train);
  train->add_option("--out", *out, "run directory to create (default runs/<algo>_<env>_seed<seed>)");
  train->add_option("--resume", *resume, "continue the run in this directory from its checkpoint");
  train->callback([flags, out, resume, train] {
    if (!resume->empty()) {
      std::optional<std::int64_t> steps;
      if (!flags->steps.empty()) {
        runs::RunSettings parsed;  // parsed and range-checked like every other setting
        for (const auto& field : settings_of("run", parsed))
          if (field.key == "run.steps") field.parse(flags->steps), field.check();
        steps = parsed.steps;
      }
      for (const char* flag : {"--algo", "--seed", "--threads", "--device", "--precision", "--eval-every", "--eval-episodes",
                               "--checkpoint-every", "--config", "--set", "--out", "--family", "--stop-at-return"})
        if (train->count(flag) > 0)
          fail("{} cannot be combined with --resume: a resumed run keeps its config.toml (only --steps extends it)",
               flag);
      const auto outcome = runs::resume_run(*resume, steps);
      if (outcome == runs::RunOutcome::kInterrupted) std::exit(130);
      return;
    }
    runs::Config config = runs::resolve_config(flags->sources());
    const std::string dir = out->empty() ? runs::default_run_dir(config) : *out;
    for (const auto& line : runs::start_lines(config, dir)) fmt::print("{}\n", line);
    if (runs::start_run(config, dir) == runs::RunOutcome::kInterrupted) std::exit(130);
  });

  auto* config_cmd = app.add_subcommand("config", "print the fully resolved settings for a task, with their meaning");
  auto config_flags = std::make_shared<ConfigFlags>();
  config_flags->add_to(*config_cmd);
  config_cmd->callback([config_flags] {
    runs::Config config = runs::resolve_config(config_flags->sources());
    fmt::print("{}\n# {}\n", runs::config_to_toml(config), runs::target_entropy_meaning(config));
  });

  auto dir = std::make_shared<std::string>();
  auto episodes = std::make_shared<int>(10);
  auto checkpoint = std::make_shared<std::string>();
  auto* eval = app.add_subcommand("eval", "evaluate a run's checkpoint with the deterministic policy");
  eval->add_option("dir", *dir, "run directory")->required();
  eval->add_option("--episodes", *episodes, "episodes to run")->capture_default_str();
  eval->add_option("--checkpoint", *checkpoint, "checkpoint file (default: the run's latest)");
  eval->callback([dir, episodes, checkpoint] {
    std::optional<std::filesystem::path> file;
    if (!checkpoint->empty()) file = *checkpoint;
    const auto result = runs::evaluate_run(*dir, *episodes, file);
    fmt::print("return {:.2f} ± {:.2f} over {} episodes (mean length {:.1f})\n", result.return_mean,
               result.return_std, *episodes, result.length_mean);
  });

  struct ModelErrorArgs {
    std::vector<std::string> runs;
    std::int64_t fresh = 250;
    std::string csv;
  };
  auto error_args = std::make_shared<ModelErrorArgs>();
  auto* model_error = app.add_subcommand(
      "model-error", "score MBPO runs' dynamics models on the same transitions: each run's newest real data");
  model_error->add_option("runs", error_args->runs, "run directories (mbpo runs of one task)")->required();
  model_error->add_option("--fresh", error_args->fresh, "newest transitions of each run to score on")
      ->capture_default_str();
  model_error->add_option("--csv", error_args->csv, "write every (model, data) pair as CSV to this file");
  model_error->callback([error_args] {
    const std::vector<std::filesystem::path> dirs(error_args->runs.begin(), error_args->runs.end());
    const runs::ModelErrors errors = runs::model_errors(dirs, error_args->fresh);
    fmt::print("model error (squared error of the expected transition per output, raw units) on each run's newest "
               "{} transitions; rows: models, columns: data\n",
               errors.fresh);
    for (std::size_t r = 0; r < errors.runs.size(); ++r)
      fmt::print("  [{}] {} (step {})\n", r + 1, errors.runs[r], errors.steps[r]);
    fmt::print("{:>8}", "");
    for (std::size_t d = 0; d < errors.runs.size(); ++d) fmt::print(" {:>11}", fmt::format("data [{}]", d + 1));
    fmt::print("\n");
    for (std::size_t m = 0; m < errors.runs.size(); ++m) {
      fmt::print("{:>8}", fmt::format("[{}]", m + 1));
      for (double mse : errors.mse[m]) fmt::print(" {:>11.5g}", mse);
      fmt::print("\n");
    }
    if (!error_args->csv.empty()) runs::write_file_atomic(error_args->csv, runs::model_errors_csv(errors));
  });
}

}  // namespace tom::cli
