// One whole MBPO epoch, the unit the project's results are limited by: 1000 env steps of
// hopper run exactly as `tom train` runs them (the same trainer, config resolution and
// family schedule), from a replay buffer of 20000 real transitions. Its 1000 steps hold
// the family's SAC updates (mbpo-paper 20 per step: 20000; tom-paper 20 on every 4th
// step: 5000), 4 model fits, 4 rollouts of 100k starts and, for TOM, 4 plans (1000 dual
// steps and 100 discriminator passes each).
// Model fits run a fixed 30 epochs (no early stopping), so that runs compare: the MDN's
// 30 x 100 batches are the schedule pytorch_peer.py prices its epoch with.
//
// Reported: seconds per epoch (real time) and counters: each phase's seconds as the
// trainer's own timers measure them, and the work done (SAC updates, model gradient
// steps), so scripts/epoch_vs_peer.py can price the same work with the peer's phases.
// Slow (a minute or more per case): run with --benchmark_filter=BM_Epoch.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <string>

#include "tom/core/figures.hpp"
#include "tom/nn/matmul.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/run.hpp"

namespace {

constexpr std::int64_t kFilledBuffer = 20000, kEpoch = 1000;

std::map<std::string, double> figures_of(const tom::backbones::Trainer& trainer) {
  tom::Figures figures;
  trainer.report(figures);
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < figures.names().size(); ++i) out[figures.names()[i]] = figures.values()[i];
  return out;
}

// Argument: threads (run.threads).
void BM_Epoch(benchmark::State& state, const std::string& family, const std::string& objective) {
  tom::runs::ConfigSources sources;
  sources.env = "hopper";
  sources.family = family;
  sources.overrides = {"run.threads=" + std::to_string(state.range(0)),
                       "objective.name=" + objective,
                       // The buffer fills by exploration; the measured epoch starts with the first fit.
                       "mbpo.random_steps=" + std::to_string(kFilledBuffer),
                       "run.steps=" + std::to_string(kFilledBuffer + kEpoch),
                       "ensemble.max_epochs=30", "ensemble.patience=31", "mdn.max_epochs=30", "mdn.patience=31",
                       // TOM weighs from the first fit (else it waits for a fresh pool).
                       "tom.wait_for_recent_pool=false",
                       // make_trainer sets the precision the config names: tom_bench's --precision.
                       std::string("run.precision=") + tom::nn::precision_name(tom::nn::matmul_precision())};
  const tom::runs::Config config = tom::runs::resolve_config(sources);
  auto trainer = tom::runs::make_trainer(config);
  while (trainer->env_steps() < kFilledBuffer) trainer->step();
  for (auto _ : state) {
    const auto before = figures_of(*trainer);
    for (std::int64_t i = 0; i < kEpoch; ++i) trainer->step();
    const auto after = figures_of(*trainer);
    const auto delta = [&](const std::string& name) { return after.at(name) - before.at(name); };
    for (const char* phase : {"env", "sac", "model_fit", "rollout", "objective"})
      state.counters[std::string(phase) + "_s"] = delta(std::string("time_") + phase + "_s");
    state.counters["sac_updates"] = delta("sac_updates");
    state.counters["model_steps"] = delta("model_gradient_steps");
    state.counters["model_fits"] = delta("model_fits");
  }
  state.SetLabel(family + " " + objective);
}

BENCHMARK_CAPTURE(BM_Epoch, mbpo_paper_mle, std::string("mbpo-paper"), std::string("mle"))
    ->Arg(1)->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Epoch, tom_paper_mle, std::string("tom-paper"), std::string("mle"))
    ->Arg(1)->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK_CAPTURE(BM_Epoch, tom_paper_tom, std::string("tom-paper"), std::string("tom"))
    ->Arg(1)->Arg(2)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace
