#include "tom/runs/run.hpp"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <optional>

#include <fmt/format.h>
#include <torch/torch.h>

#include "tom/agents/sac.hpp"
#include "tom/core/blas_kernel.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/envs/registry.hpp"
#include "tom/model_learning/stage.hpp"
#include "tom/models/make_model.hpp"
#include "tom/nn/matmul.hpp"
#include "tom/runs/backbone_registry.hpp"
#include "tom/runs/build_info.hpp"
#include "tom/runs/checkpoint.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/metrics_table.hpp"
#include "tom/runs/progress.hpp"
#include "tom/runs/provenance.hpp"
#include "tom/runs/run_lock.hpp"

namespace tom::runs {
namespace fs = std::filesystem;
namespace {

constexpr const char* kConfigFile = "config.toml";
constexpr const char* kMetricsFile = "metrics.csv";
constexpr const char* kWeightsFile = "weights.csv";
constexpr const char* kCheckpointFile = "checkpoint.pt";

std::atomic<int> g_stop_signal{0};

extern "C" void request_stop(int signal) { g_stop_signal.store(signal); }

// Installs the stop handlers for the lifetime of a training loop.
class StopOnSignals {
 public:
  StopOnSignals() {
    g_stop_signal.store(0);
    previous_int_ = std::signal(SIGINT, request_stop);
    previous_term_ = std::signal(SIGTERM, request_stop);
  }
  ~StopOnSignals() {
    std::signal(SIGINT, previous_int_);
    std::signal(SIGTERM, previous_term_);
  }
  int signal() const { return g_stop_signal.load(); }

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

torch::Device device_of(const Config& config) {
  try {
    torch::Device device(config.run.device);
    if (device.is_cuda() && !torch::cuda::is_available())
      fail("device {} was asked for, but this LibTorch build or machine has no CUDA device", config.run.device);
    return device;
  } catch (const c10::Error&) {
    fail("setting run.device = '{}' is not a device (cpu, cuda or cuda:N)", config.run.device);
  }
}

// One row of metrics.csv: the step, wall-clock figures, the evaluation, then the trainer's.
Figures metrics_row(std::int64_t step, double wall_s, double steps_per_s, const EvalResult& eval,
                    const backbones::Trainer& trainer) {
  Figures row;
  row("step", static_cast<double>(step));
  row("wall_s", wall_s);
  row("steps_per_s", steps_per_s);
  row("eval_return_mean", eval.return_mean);
  row("eval_return_std", eval.return_std);
  row("eval_length_mean", eval.length_mean);
  trainer.report(row);
  return row;
}

// metrics.csv and weights.csv: appended line by line (each line one write, so readers
// and kills see whole lines), a resumed run first drops the rows written after its
// checkpoint, and an unterminated last line a kill may have left.
class CsvLog {
 public:
  CsvLog(const fs::path& path, const std::vector<std::string>& header, std::int64_t keep_through_step) {
    std::string kept = join(header, ",") + "\n";
    if (path_exists(path)) {
      const std::string text = read_file(path);
      std::size_t at = 0;
      for (int line_number = 1; at < text.size(); ++line_number) {
        const std::size_t end = text.find('\n', at);
        if (end == std::string::npos) break;  // unterminated: a row cut short by a kill
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        if (line_number == 1) {
          if (line != join(header, ","))
            fail("{} has other columns than this run writes; it is not this run's file (move it away to "
                 "continue)",
                 path.string());
          continue;
        }
        if (line.empty()) continue;
        std::int64_t step = 0;
        const auto comma = line.find(',');
        const char* number_end = line.data() + (comma == std::string::npos ? line.size() : comma);
        const auto [end_of_number, error] = std::from_chars(line.data(), number_end, step);
        if (comma == std::string::npos || error != std::errc() || end_of_number != number_end)
          fail("{} line {} does not start with a step number; the file is damaged (move it away to continue)",
               path.string(), line_number);
        if (step <= keep_through_step) kept += line + "\n";
      }
    }
    write_file_atomic(path, kept);
    out_.emplace(path);
  }
  void append(const std::vector<double>& values) {
    std::string row;
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i) row += ',';
      row += i == 0 ? fmt::format("{}", static_cast<std::int64_t>(values[i])) : fmt::format("{}", values[i]);
    }
    out_->append_line(row);
  }

 private:
  std::optional<LineAppender> out_;
};

// The checkpoint's layout: raised when a trainer's saved state changes shape, so that an
// older checkpoint is refused with a message rather than half read. 2: named counters
// and figures, one off-policy core.
constexpr int kCheckpointLayout = 3;  // 3: the model-learning stage's parts

nlohmann::json checkpoint_header(const Config& config, std::int64_t step, double wall_s) {
  return {{"format", "tom-rl run checkpoint"}, {"layout", kCheckpointLayout}, {"algo", config.run.algo},
          {"env", config.run.env}, {"step", step}, {"wall_s", wall_s}};
}

// A run training to its budget: the trainer stepped, evaluated and checkpointed on
// schedule, its metrics and weight rows logged, until the budget, the target return or a
// signal ends it. The wall clock carries on from the checkpoint's.
class TrainLoop {
 public:
  TrainLoop(Config& config, const fs::path& dir, backbones::Trainer& trainer, double wall_before)
      : config_(config),
        dir_(dir),
        trainer_(trainer),
        wall_before_(wall_before),
        metric_names_(metrics_row(0, 0, 0, {}, trainer).names()),
        metrics_(dir / kMetricsFile, metric_names_, trainer.env_steps()),
        saved_step_(trainer.env_steps()),
        progress_(trainer.env_steps(), config.run.steps),
        rate_step_(trainer.env_steps()),
        rate_wall_(wall()) {
    if (model_learning::Stage* learning = trainer.model_learning()) {
      std::vector<std::string> header{"step"};
      for (int b = 0; b < model_learning::Stage::kWeightBins; ++b) header.push_back(fmt::format("bin_{}", b));
      // A model fit labelled with step L runs during the env step that ends at L + 1.
      weights_.emplace(dir / kWeightsFile, header, trainer.env_steps() - 1);
    }
  }

  RunOutcome run() {
    while (trainer_.env_steps() < config_.run.steps) {
      step_trainer();
      const std::int64_t step = trainer_.env_steps();
      const std::optional<double> eval_return = evaluate_if_due(step);
      if (step % config_.run.checkpoint_every == 0 || step == config_.run.steps) save();
      if (eval_return && config_.run.reached_target(*eval_return)) {
        if (saved_step_ != step) save();
        progress_.finish();
        fmt::print("run complete: evaluation return {:.2f} reached the target {} at step {} ({:.1f} s); results in {}\n",
                   *eval_return, config_.run.target_return, step, wall(), dir_.string());
        return RunOutcome::kCompleted;
      }
      if (stop_.signal() != 0) {
        save();
        progress_.finish();
        fmt::print("stopped by signal {} at step {}; checkpoint written. Continue with: tom train --resume {}\n",
                   stop_.signal(), step, dir_.string());
        return RunOutcome::kInterrupted;
      }
      progress_.update(step);
    }
    progress_.finish();
    fmt::print("run complete: {} steps in {:.1f} s; results in {}\n", trainer_.env_steps(), wall(), dir_.string());
    return RunOutcome::kCompleted;
  }

 private:
  double wall() const {
    return wall_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  std::string kept() const {
    return fmt::format("{} keeps the state of step {}", (dir_ / kCheckpointFile).string(), saved_step_);
  }

  void step_trainer() {
    try {
      trainer_.step();
    } catch (const Error& e) {
      fail("{}. The run stopped at step {}; {}", e.what(), trainer_.env_steps(), kept());
    }
    if (weights_)
      for (const auto& row : trainer_.model_learning()->take_weight_rows()) weights_->append(row);
  }

  // Evaluates and logs a metrics row when the step is due; returns the evaluation return.
  std::optional<double> evaluate_if_due(std::int64_t step) {
    if (step % config_.run.eval_every != 0 && step != config_.run.steps) return std::nullopt;
    const EvalResult eval =
        evaluate_policy([&](std::span<const double> obs) { return trainer_.act_deterministic(obs); }, config_.run.env,
                        config_.run.eval_episodes, static_cast<std::uint64_t>(config_.run.seed) * 1000003ULL + step);
    const double now = wall();
    const double rate = static_cast<double>(step - rate_step_) / std::max(now - rate_wall_, 1e-9);
    rate_step_ = step;
    rate_wall_ = now;
    const Figures row = metrics_row(step, now, rate, eval, trainer_);
    if (row.names() != metric_names_)
      fail("the trainer reported other metrics at step {} than at the start of the run", step);
    metrics_.append(row.values());
    progress_.message(fmt::format("step {:>8}  eval return {:9.2f} ± {:7.2f}  length {:6.1f}  {:.0f} steps/s", step,
                                  eval.return_mean, eval.return_std, eval.length_mean, rate));
    return eval.return_mean;
  }

  void save() {
    try {
      write_checkpoint(dir_ / kCheckpointFile, checkpoint_header(config_, trainer_.env_steps(), wall()),
                       [&](torch::serialize::OutputArchive& archive) { trainer_.save(archive); }, true);
    } catch (const NonFiniteState& e) {
      fail("the run diverged at step {}: {} (a learning rate too high for the task is the usual cause); it "
           "stopped, and {}",
           trainer_.env_steps(), e.what(), kept());
    } catch (const Error& e) {
      fail("{}. The run stopped; {}: once that is fixed, continue with tom train --resume {}", e.what(), kept(),
           dir_.string());
    }
    saved_step_ = trainer_.env_steps();
  }

  Config& config_;
  const fs::path& dir_;
  backbones::Trainer& trainer_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double wall_before_;
  std::vector<std::string> metric_names_;
  CsvLog metrics_;
  std::optional<CsvLog> weights_;
  std::int64_t saved_step_;  // the checkpoint on disk holds this step
  StopOnSignals stop_;
  Progress progress_;
  std::int64_t rate_step_;  // where the steps-per-second rate was last measured
  double rate_wall_;
};

RunOutcome train_loop(Config& config, const fs::path& dir, backbones::Trainer& trainer, double wall_before) {
  return TrainLoop(config, dir, trainer, wall_before).run();
}

}  // namespace

void apply_compute_settings(const RunSettings& run) {
  set_threads(run.threads);
  nn::set_matmul_precision(nn::parse_precision(run.precision));
}

std::unique_ptr<backbones::Trainer> make_trainer(const Config& config) {
  apply_compute_settings(config.run);
  const torch::Device device = device_of(config);
  const auto seed = static_cast<std::uint64_t>(config.run.seed);
  torch::manual_seed(seed);
  return backbone_entry(config.run.algo).make(config, envs::make_env(config.run.env), seed, device);
}

EvalResult evaluate_policy(const Policy& policy, const std::string& env_name, int episodes,
                           std::uint64_t seed_base) {
  auto env = envs::make_env(env_name);
  std::vector<double> returns, lengths;
  for (int episode = 0; episode < episodes; ++episode) {
    auto obs = env->reset(seed_base * 7919ULL + static_cast<std::uint64_t>(episode));
    double total = 0.0;
    int length = 0;
    while (true) {
      const envs::Step step = env->step(policy(obs));
      total += step.reward;
      ++length;
      if (step.terminated || step.truncated) break;
      obs = step.obs;
    }
    returns.push_back(total);
    lengths.push_back(length);
  }
  EvalResult result;
  for (std::size_t i = 0; i < returns.size(); ++i) {
    result.return_mean += returns[i] / episodes;
    result.length_mean += lengths[i] / episodes;
  }
  for (double r : returns) result.return_std += (r - result.return_mean) * (r - result.return_mean) / episodes;
  result.return_std = std::sqrt(result.return_std);
  return result;
}

namespace {

// Whether `dir` holds nothing but what a writer killed before it began leaves behind.
bool holds_no_run(const fs::path& dir) {
  for (const auto& name : directory_entries(dir))
    if (name != kLockFile && !(name.starts_with(".") && name.find(".tmp") != std::string::npos)) return false;
  return true;
}

[[noreturn]] void refuse_existing(const fs::path& dir) {
  fail("{} already exists and is not an empty directory; choose another --out, or continue that run with "
       "tom train --resume {}",
       dir.string(), dir.string());
}

}  // namespace

namespace {

// The step-0 checkpoint, written before anything else of the run (metrics.csv), so that
// from then on a killed run always resumes.
void write_first_checkpoint(const fs::path& dir, const Config& config, backbones::Trainer& trainer) {
  try {
    write_checkpoint(dir / kCheckpointFile, checkpoint_header(config, trainer.env_steps(), 0.0),
                     [&](torch::serialize::OutputArchive& archive) { trainer.save(archive); });
  } catch (const Error& e) {
    fail("{}. Once that is fixed, start the run with tom train --resume {}", e.what(), dir.string());
  }
}

}  // namespace

std::string default_run_dir(const Config& config) {
  return fmt::format("runs/{}_{}_seed{}", config.run.algo, config.run.env, config.run.seed);
}

std::vector<std::string> start_lines(const Config& config, const std::string& dir) {
  const std::string kernel = blas_kernel_name();
  std::vector<std::string> lines{fmt::format(
      "training {} on {} for {} steps (seed {}, {} thread{}{}{}) into {}", config.run.algo, config.run.env,
      config.run.steps, config.run.seed, config.run.threads, config.run.threads == 1 ? "" : "s",
      kernel.empty() ? "" : ", OpenBLAS " + kernel + " kernels",
      config.run.precision == "fp32" ? "" : ", " + config.run.precision + " matrix products", dir)};
  if (const std::string advice = blas_kernel_advice(); !advice.empty()) lines.push_back("note: " + advice);
  for (const auto& warning : budget_warnings(config)) lines.push_back("warning: " + warning);
  return lines;
}

RunOutcome start_run(Config config, const fs::path& dir) {
  if (path_exists(dir) && !(fs::is_directory(dir) && holds_no_run(dir))) refuse_existing(dir);
  config.check();
  auto trainer = make_trainer(config);
  make_directory(dir, "run directory");
  const RunLock lock(dir);
  if (!holds_no_run(dir)) refuse_existing(dir);  // another writer got there first
  remove_stale_temporaries(dir);
  record_binary(config, /*creating=*/true);
  write_file_atomic(dir / kConfigFile, config_to_toml(config));
  write_first_checkpoint(dir, config, *trainer);
  return train_loop(config, dir, *trainer, 0.0);
}

namespace {

Config read_run_config(const fs::path& dir) {
  const fs::path file = dir / kConfigFile;
  if (!path_exists(file))
    fail("{} is not a run directory (it has no {}); if its tom train was stopped before it began, run that "
         "tom train command again",
         dir.string(), kConfigFile);
  return load_run_config(read_file(file), file.string());
}

// The evaluation return of metrics.csv's row for `step` when it reached the run's target
// (where the run loop stopped), else nothing; a metrics file that cannot be read is left
// to the run loop, which names its problem.
std::optional<double> target_reached_at(const fs::path& dir, const RunSettings& run, std::int64_t step) {
  if (!run.stop_at_return || !path_exists(dir / kMetricsFile)) return std::nullopt;
  try {
    const NumericTable metrics = read_numeric_csv(dir / kMetricsFile);
    const auto steps = metrics.column("step"), returns = metrics.column("eval_return_mean");
    for (std::size_t i = 0; i < steps.size(); ++i)
      if (static_cast<std::int64_t>(steps[i]) == step && run.reached_target(returns[i])) return returns[i];
  } catch (const Error&) {
  }
  return std::nullopt;
}

Checkpoint read_matching_checkpoint(const fs::path& file, const Config& config) {
  Checkpoint checkpoint = read_checkpoint(file);
  const auto& header = checkpoint.header;
  if (header.value("format", "") != "tom-rl run checkpoint" || !header.contains("step"))
    fail("{} is not a tom-rl run checkpoint", file.string());
  if (const int layout = header.value("layout", 1); layout != kCheckpointLayout)
    fail("{} was written by {} version of tom (checkpoint layout {}, this one reads {}); continue or evaluate it "
         "with the tom binary that wrote it, or start the run again",
         file.string(), layout < kCheckpointLayout ? "an older" : "a newer", layout, kCheckpointLayout);
  if (header.value("env", "") != config.run.env || header.value("algo", "") != config.run.algo)
    fail("{} is a checkpoint of {} on {}, but the run is {} on {}", file.string(), header.value("algo", "?"),
         header.value("env", "?"), config.run.algo, config.run.env);
  return checkpoint;
}

}  // namespace

RunOutcome resume_run(const fs::path& dir, std::optional<std::int64_t> steps) {
  Config config = read_run_config(dir);
  const RunLock lock(dir);  // before reading the checkpoint, so no one replaces it under us
  remove_stale_temporaries(dir);
  std::unique_ptr<backbones::Trainer> trainer;
  double wall_before = 0.0;
  if (!path_exists(dir / kCheckpointFile) && !path_exists(dir / kMetricsFile)) {
    // Stopped between writing config.toml and its step-0 checkpoint: nothing was done yet.
    fmt::print("{} has no checkpoint yet (its run was stopped as it began); starting it from step 0\n", dir.string());
    trainer = make_trainer(config);
    // Before metrics.csv exists: a kill after this resumes from the checkpoint (a kill
    // between the two files would leave a run that can be resumed from neither).
    write_first_checkpoint(dir, config, *trainer);
  } else {
    const Checkpoint checkpoint = read_matching_checkpoint(dir / kCheckpointFile, config);
    trainer = make_trainer(config);
    checkpoint.load([&](torch::serialize::InputArchive& archive) { trainer->load(archive); });
    if (trainer->env_steps() != checkpoint.header["step"].get<std::int64_t>())
      fail("{}: checkpoint header and contents disagree on the step", checkpoint.path.string());
    wall_before = checkpoint.header.value("wall_s", 0.0);
  }
  bool config_changed = record_binary(config, /*creating=*/false);
  if (config_changed)
    fmt::print("note: {} continues with another binary ({}); config.toml lists it in provenance.resumed_by\n",
               dir.string(), binary_label(build_info().revision, build_info().dirty));
  if (steps) {
    if (*steps < trainer->env_steps())
      fail("--steps {} is below the {} steps the run has already done", *steps, trainer->env_steps());
    config.run.steps = *steps;
    config_changed = true;
  }
  if (config_changed) write_file_atomic(dir / kConfigFile, config_to_toml(config));
  if (const auto reached = target_reached_at(dir, config.run, trainer->env_steps())) {
    fmt::print("{} is complete: its evaluation return {:.2f} reached the target {} at step {}\n", dir.string(),
               *reached, config.run.target_return, trainer->env_steps());
    return RunOutcome::kCompleted;
  }
  if (trainer->env_steps() >= config.run.steps) {
    fmt::print("{} is already complete ({} steps); pass --steps to extend it\n", dir.string(), trainer->env_steps());
    return RunOutcome::kCompleted;
  }
  fmt::print("resuming {} at step {} of {}\n", dir.string(), trainer->env_steps(), config.run.steps);
  return train_loop(config, dir, *trainer, wall_before);
}

std::unique_ptr<agents::Sac> load_agent(const fs::path& dir, const std::optional<fs::path>& checkpoint_file) {
  const Config config = read_run_config(dir);
  const Checkpoint checkpoint = read_matching_checkpoint(checkpoint_file.value_or(dir / kCheckpointFile), config);
  apply_compute_settings(config.run);
  const auto spec = envs::make_env(config.run.env)->spec();
  auto agent = std::make_unique<agents::Sac>(config.sac, spec.obs_dim, spec.action_dim, spec.action_low,
                                             spec.action_high, device_of(config),
                                             static_cast<std::uint64_t>(config.run.seed));
  // Only the agent's part of the checkpoint is read: no replay or model buffers are built.
  checkpoint.load([&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive part;
    if (!archive.try_read("agent", part)) fail("{} holds no agent", checkpoint.path.string());
    agent->load(part);
  });
  return agent;
}

Policy load_policy(const fs::path& dir, const std::optional<fs::path>& checkpoint_file) {
  const Config config = read_run_config(dir);
  if (backbone_entry(config.run.algo).agent_acts) {
    std::shared_ptr<agents::Sac> agent = load_agent(dir, checkpoint_file);
    return [agent](std::span<const double> obs) { return agent->act(obs, /*deterministic=*/true); };
  }
  const Checkpoint checkpoint = read_matching_checkpoint(checkpoint_file.value_or(dir / kCheckpointFile), config);
  std::shared_ptr<backbones::Trainer> trainer = make_trainer(config);
  checkpoint.load([&](torch::serialize::InputArchive& archive) { trainer->load(archive); });
  return [trainer](std::span<const double> obs) { return trainer->act_deterministic(obs); };
}

RunModel load_run_model(const fs::path& dir) {
  RunModel out{read_run_config(dir)};
  const Config& config = out.config;
  if (!backbone_entry(config.run.algo).learns_model)
    fail("{} is a {} run: it has no dynamics model (only model-based backbones have one)", dir.string(),
         config.run.algo);
  const Checkpoint checkpoint = read_matching_checkpoint(dir / kCheckpointFile, config);
  out.step = checkpoint.header.value("step", std::int64_t{0});
  apply_compute_settings(config.run);
  const auto spec = envs::make_env(config.run.env)->spec();
  const torch::Device device = device_of(config);
  out.model = models::make_model(config.mbpo.model, config.ensemble, config.mdn, spec.obs_dim, spec.action_dim,
                                 static_cast<std::uint64_t>(config.run.seed), device);
  out.replay = std::make_unique<data::ReplayBuffer>(config.mbpo.replay_capacity, spec.obs_dim, spec.action_dim, device);
  checkpoint.load([&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive model, replay;
    if (!archive.try_read("model", model) || !archive.try_read("replay", replay))
      fail("{} holds no dynamics model and replay buffer", checkpoint.path.string());
    out.model->load(model);
    out.replay->load(replay);
  });
  return out;
}

EvalResult evaluate_run(const fs::path& dir, int episodes, const std::optional<fs::path>& checkpoint) {
  if (episodes < 1) fail("--episodes must be at least 1 (got {})", episodes);
  const Policy policy = load_policy(dir, checkpoint);
  const Config config = read_run_config(dir);
  return evaluate_policy(policy, config.run.env, episodes, 0xE7A1ULL);
}

}  // namespace tom::runs
