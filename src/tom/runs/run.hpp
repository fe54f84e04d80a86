#pragma once
// Run management: a run directory holds config.toml (the fully resolved settings),
// metrics.csv (one row per evaluation) and checkpoint.pt (the latest checkpoint,
// replaced atomically). Runs resume exactly from their checkpoint, stop cleanly on
// SIGINT/SIGTERM after writing one, and never overwrite another run's results. Only one
// process writes a run at a time (RunLock, run_lock.hpp); a run killed at any moment
// resumes from its last checkpoint, and a state holding NaN/inf is never checkpointed.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "tom/agents/sac.hpp"
#include "tom/backbones/trainer.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/models/dynamics_model.hpp"
#include "tom/runs/config.hpp"

namespace tom::runs {

// Sets the process-wide compute settings a run names: its thread count and its matrix
// products' precision (throws tom::Error for bf16 on a CPU without AVX512-BF16).
void apply_compute_settings(const RunSettings& run);

// The backbone loop the config asks for, on its env, seed and device.
std::unique_ptr<backbones::Trainer> make_trainer(const Config& config);

struct EvalResult {
  double return_mean = 0, return_std = 0, length_mean = 0;
};
// A deterministic policy: one observation in, one action out.
using Policy = std::function<std::vector<double>(std::span<const double>)>;
// Runs `episodes` episodes of `policy` on a fresh env of the task; the episodes start from
// seeds derived from `seed_base`.
EvalResult evaluate_policy(const Policy& policy, const std::string& env, int episodes, std::uint64_t seed_base);

enum class RunOutcome { kCompleted, kInterrupted };

// Where `tom train` (and Python's tomrl.train) puts a run when no directory is given:
// runs/<algo>_<env>_seed<seed>.
std::string default_run_dir(const Config& config);
// What a new run announces before it starts: what trains on what into `dir` (threads,
// OpenBLAS kernels), then any BLAS advice and budget warning, one line each.
std::vector<std::string> start_lines(const Config& config, const std::string& dir);

// Starts a new run in `dir` (created; an existing non-empty directory is refused) and
// checkpoints its step 0 at once.
RunOutcome start_run(Config config, const std::filesystem::path& dir);
// Continues the run in `dir` from its checkpoint (from step 0 if it was stopped before
// writing one); `steps`, if given, extends the budget.
RunOutcome resume_run(const std::filesystem::path& dir, std::optional<std::int64_t> steps = std::nullopt);

// The agent of a run's latest checkpoint (or of `checkpoint`), read without building the
// trainer (its buffers) around it.
std::unique_ptr<agents::Sac> load_agent(const std::filesystem::path& dir,
                                        const std::optional<std::filesystem::path>& checkpoint = std::nullopt);

// The deterministic policy of a run's latest checkpoint (or of `checkpoint`): its agent
// alone where the backbone has one (SAC, MBPO: no buffers are built), else the whole
// trainer restored (PETS plans with its model). The policy owns what it acts with.
Policy load_policy(const std::filesystem::path& dir,
                   const std::optional<std::filesystem::path>& checkpoint = std::nullopt);

// The learned dynamics model and the real replay buffer of an MBPO run's latest
// checkpoint, read without building the trainer around them.
struct RunModel {
  Config config;
  std::int64_t step = 0;  // env steps of the checkpoint
  std::unique_ptr<models::DynamicsModel> model;
  std::unique_ptr<data::ReplayBuffer> replay;
};
RunModel load_run_model(const std::filesystem::path& dir);

// Evaluates a run's latest checkpoint (or `checkpoint`) with the deterministic policy.
EvalResult evaluate_run(const std::filesystem::path& dir, int episodes,
                        const std::optional<std::filesystem::path>& checkpoint = std::nullopt);

}  // namespace tom::runs
