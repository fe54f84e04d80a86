// Env steps per second for every task against bare MuJoCo on the same model and the same
// trajectory (frame_skip x mj_step per step, the env's resets replayed), so the ratio is
// the cost of the task layer (validation, observation, reward, health check, contact forces).
// Counters: env_steps_per_s, bare_steps_per_s, ratio = env / bare (single thread).
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "tom/envs/mujoco_env.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using tom::envs::MujocoEnv;

constexpr int kSegmentSteps = 500;

struct EpisodeStart {
  int step;  // index of the first step of the episode within the segment
  std::vector<double> qpos, qvel;
};

// A fixed segment of random actions (uniform within bounds) and the episode starts the env
// produces on it from reset(0), resetting whenever an episode ends.
struct Segment {
  std::vector<double> actions;  // kSegmentSteps x action_dim
  std::vector<EpisodeStart> starts;
};

Segment record_segment(MujocoEnv& env) {
  const auto& spec = env.spec();
  const auto nu = static_cast<std::size_t>(spec.action_dim);
  Segment segment;
  std::mt19937_64 rng(0);
  for (int t = 0; t < kSegmentSteps; ++t)
    for (std::size_t i = 0; i < nu; ++i)
      segment.actions.push_back(std::uniform_real_distribution<double>(spec.action_low[i], spec.action_high[i])(rng));
  env.reset(0);
  const auto remember_start = [&](int step) {
    segment.starts.push_back({step, {env.qpos().begin(), env.qpos().end()}, {env.qvel().begin(), env.qvel().end()}});
  };
  remember_start(0);
  for (int t = 0; t < kSegmentSteps; ++t) {
    const auto step = env.step({segment.actions.data() + t * nu, nu});
    if (step.terminated || step.truncated) {
      env.reset();
      remember_start(t + 1);
    }
  }
  return segment;
}

double run_env(MujocoEnv& env, const Segment& segment) {
  const auto nu = static_cast<std::size_t>(env.spec().action_dim);
  const auto start = Clock::now();
  env.reset(0);
  for (int t = 0; t < kSegmentSteps; ++t) {
    const auto step = env.step({segment.actions.data() + t * nu, nu});
    if (step.terminated || step.truncated) env.reset();
    benchmark::DoNotOptimize(step.reward);
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double run_bare(const mjModel* model, mjData* data, int frame_skip, const Segment& segment) {
  const auto set_start = [&](const EpisodeStart& s) {
    mj_resetData(model, data);
    std::copy(s.qpos.begin(), s.qpos.end(), data->qpos);
    std::copy(s.qvel.begin(), s.qvel.end(), data->qvel);
    mj_forward(model, data);
  };
  const auto start = Clock::now();
  std::size_t next_start = 0;
  for (int t = 0; t < kSegmentSteps; ++t) {
    if (next_start < segment.starts.size() && segment.starts[next_start].step == t) set_start(segment.starts[next_start++]);
    std::copy_n(segment.actions.data() + t * model->nu, model->nu, data->ctrl);
    for (int i = 0; i < frame_skip; ++i) mj_step(model, data);
    benchmark::DoNotOptimize(data->qpos[0]);
  }
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void BM_EnvStepVsBareMujoco(benchmark::State& state, const std::string& name) {
  auto env = tom::envs::make_mujoco_env(name);
  const Segment segment = record_segment(*env);
  const mjModel* model = &env->model();
  std::unique_ptr<mjData, tom::envs::DataDeleter> bare(mj_makeData(model));
  double env_seconds = 0.0, bare_seconds = 0.0;
  for (auto _ : state) {
    // Interleaved, so both see the same machine load.
    const double env_time = run_env(*env, segment);
    bare_seconds += run_bare(model, bare.get(), env->frame_skip(), segment);
    env_seconds += env_time;
    state.SetIterationTime(env_time);
  }
  const double steps = static_cast<double>(state.iterations()) * kSegmentSteps;
  state.SetItemsProcessed(static_cast<std::int64_t>(steps));
  state.counters["env_steps_per_s"] = steps / env_seconds;
  state.counters["bare_steps_per_s"] = steps / bare_seconds;
  state.counters["ratio"] = bare_seconds / env_seconds;
  state.counters["episodes"] = static_cast<double>(segment.starts.size());
}

const bool registered = [] {
  for (const std::string& name : tom::envs::env_names())
    benchmark::RegisterBenchmark(("BM_EnvStepVsBareMujoco/" + name).c_str(), BM_EnvStepVsBareMujoco, name)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  return true;
}();

}  // namespace
