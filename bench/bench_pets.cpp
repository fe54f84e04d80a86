// PETS planning per env step on halfcheetah (obs 17, act 6), run exactly as `tom train
// --algo pets` runs it: the same trainer and config resolution, the ensemble fitted once
// on pets.random_steps of random transitions, then env steps that each plan by CEM over
// the ensemble's particles. MBBL (Wang et al. 2019) reports 15.3 hours for 200k steps of
// PETS-CEM on HalfCheetah with 4 CPUs and a GPU: about 0.28 s per env step, training
// included; this is the number to beat on our 2 cores.
//
// Cases: the default planner (mbrl-lib's: horizon 30, population 500, 50 elites, 5
// iterations, 20 particles) and configs/presets/pets_cpu_planner.toml (horizon 15,
// population 100, 10 elites, 3 iterations, 5 particles: 1/67 of the default's model rows).
// Argument: threads (run.threads). Reported: seconds per env step (real time, the env
// step included) and the planner's own timer per step. Slow: run with --benchmark_filter=BM_PetsPlan.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "tom/core/figures.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/run.hpp"

namespace {

constexpr std::int64_t kRandomSteps = 1000, kMeasuredSteps = 10;

double figure(const tom::backbones::Trainer& trainer, const std::string& name) {
  tom::Figures figures;
  trainer.report(figures);
  for (std::size_t i = 0; i < figures.names().size(); ++i)
    if (figures.names()[i] == name) return figures.values()[i];
  return 0.0;
}

// planner_file: a TOML settings file under configs/ ("" for mbrl-lib's default planner).
void BM_PetsPlan(benchmark::State& state, const std::string& planner_file) {
  tom::runs::ConfigSources sources;
  sources.env = "halfcheetah";
  if (!planner_file.empty()) sources.user_file = std::string(TOM_SOURCE_DIR) + "/configs/" + planner_file;
  sources.overrides = {"run.algo=pets", "run.threads=" + std::to_string(state.range(0)),
                       "pets.random_steps=" + std::to_string(kRandomSteps),
                       "run.steps=" + std::to_string(kRandomSteps + 1000),
                       // One short fit: the model's quality does not change the planner's work.
                       "ensemble.max_epochs=5"};
  const tom::runs::Config config = tom::runs::resolve_config(sources);
  auto trainer = tom::runs::make_trainer(config);
  // The first planned step fits the model; keep it out of the timing.
  while (trainer->env_steps() <= kRandomSteps) trainer->step();
  for (auto _ : state) {
    const double plan_before = figure(*trainer, "time_plan_s");
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < kMeasuredSteps; ++i) trainer->step();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    state.counters["s_per_step"] = took.count() / kMeasuredSteps;
    state.counters["plan_s_per_step"] = (figure(*trainer, "time_plan_s") - plan_before) / kMeasuredSteps;
  }
}

BENCHMARK_CAPTURE(BM_PetsPlan, mbrl_lib_default, std::string())
    ->Arg(1)->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
// What our halfcheetah PETS runs plan with (docs/fidelity.md, "pets-paper").
BENCHMARK_CAPTURE(BM_PetsPlan, cpu_planner_preset, std::string("presets/pets_cpu_planner.toml"))
    ->Arg(1)->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace
