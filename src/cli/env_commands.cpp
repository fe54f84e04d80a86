// `tom envs` (the task table) and `tom rollout` (a uniformly random policy on one task).
#include <algorithm>
#include <memory>
#include <random>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/error.hpp"
#include "tom/envs/registry.hpp"

namespace tom::cli {
namespace {

// "[-1, 1]^3" when every action entry has the same bounds, else each entry's interval.
std::string format_bounds(const envs::EnvSpec& spec) {
  const bool uniform = std::all_of(spec.action_low.begin(), spec.action_low.end(),
                                   [&](double v) { return v == spec.action_low[0]; }) &&
                       std::all_of(spec.action_high.begin(), spec.action_high.end(),
                                   [&](double v) { return v == spec.action_high[0]; });
  if (uniform) return fmt::format("[{:g}, {:g}]^{}", spec.action_low[0], spec.action_high[0], spec.action_dim);
  std::vector<std::string> intervals;
  for (int i = 0; i < spec.action_dim; ++i)
    intervals.push_back(fmt::format("[{:g}, {:g}]", spec.action_low[i], spec.action_high[i]));
  return join(intervals, " ");
}

void list_envs() {
  fmt::print("{:<22} {:>7} {:>10}  {:<16} {:>7} {:>9}\n", "task", "obs dim", "action dim", "action bounds", "dt",
             "max steps");
  for (const std::string& name : envs::env_names()) {
    const envs::EnvSpec spec = envs::make_env(name)->spec();
    fmt::print("{:<22} {:>7} {:>10}  {:<16} {:>7.3f} {:>9}\n", name, spec.obs_dim, spec.action_dim,
               format_bounds(spec), spec.dt, spec.max_episode_steps);
  }
}

struct RolloutOptions {
  std::string env;
  int episodes = 1;
  std::uint64_t seed = 0;
  int max_steps = 1000;
};

// The policy draws each action entry uniformly within its bounds from a generator seeded
// with `seed`; the environment is seeded with the same value on the first reset.
void run_rollout(const RolloutOptions& options) {
  if (options.episodes < 1) fail("--episodes must be at least 1, got {}", options.episodes);
  if (options.max_steps < 1) fail("--max-steps must be at least 1, got {}", options.max_steps);
  auto env = envs::make_env(options.env, {.max_episode_steps = options.max_steps});
  const envs::EnvSpec& spec = env->spec();
  std::mt19937_64 policy_rng(options.seed);
  std::vector<std::uniform_real_distribution<double>> uniform;
  for (int i = 0; i < spec.action_dim; ++i) uniform.emplace_back(spec.action_low[i], spec.action_high[i]);
  std::vector<double> action(static_cast<std::size_t>(spec.action_dim));

  double total_return = 0.0, total_length = 0.0;
  for (int episode = 0; episode < options.episodes; ++episode) {
    env->reset(episode == 0 ? std::optional<std::uint64_t>(options.seed) : std::nullopt);
    double episode_return = 0.0;
    int length = 0;
    for (bool done = false; !done; ++length) {
      for (int i = 0; i < spec.action_dim; ++i) action[i] = uniform[i](policy_rng);
      const envs::Step step = env->step(action);
      episode_return += step.reward;
      done = step.terminated || step.truncated;
    }
    fmt::print("episode {}: return {:.3f}, length {}\n", episode + 1, episode_return, length);
    total_return += episode_return;
    total_length += length;
  }
  fmt::print("mean over {} episodes: return {:.3f}, length {:.1f}\n", options.episodes,
             total_return / options.episodes, total_length / options.episodes);
}

}  // namespace

void add_env_commands(CLI::App& app) {
  app.add_subcommand("envs", "List the environments with their dimensions, action bounds, dt and time limit")
      ->callback(list_envs);

  auto options = std::make_shared<RolloutOptions>();
  auto* rollout = app.add_subcommand("rollout", "Run a uniformly random policy and print per-episode returns");
  rollout->add_option("--env", options->env, "environment name (see `tom envs`)")->required();
  rollout->add_option("--episodes", options->episodes, "number of episodes")->capture_default_str();
  rollout->add_option("--seed", options->seed, "seed of the environment and the random policy")
      ->capture_default_str();
  rollout->add_option("--max-steps", options->max_steps, "time limit per episode")->capture_default_str();
  rollout->callback([options] { run_rollout(*options); });
}

}  // namespace tom::cli
