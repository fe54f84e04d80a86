// TOM's dual step and discriminator step at Hopper sizes (obs 11, act 3, batch 256), the
// same work as the PyTorch peer's tom_q_step and disc_step:
//   OPENBLAS_NUM_THREADS=1 python3 /work/shared/bench/pytorch_peer.py --threads 1 --only tom_q_step,disc_step
// and one whole TOM plan (what a model fit waits for) on a 20k-transition buffer, to
// compare with the sum of its steps.
#include <benchmark/benchmark.h>

#include "tom/agents/sac.hpp"
#include "tom/core/threads.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/objectives/discriminator.hpp"
#include "tom/objectives/make_objective.hpp"
#include "tom/objectives/tom_dual.hpp"

namespace {

using namespace tom::objectives;
constexpr std::int64_t kObs = 11, kAct = 3, kBatch = 256;

// A tanh-Gaussian policy of the SAC actor's size (256-256), standing in for pi(a'|s')
// sampling, which the peer's step also pays for.
struct PolicyStandIn : torch::nn::Module {
  torch::nn::Linear l1{kObs, 256}, l2{256, 256}, mean{256, kAct}, log_std{256, kAct};
  torch::Tensor sample(const torch::Tensor& s) {
    torch::NoGradGuard no_grad;
    const auto h = torch::relu(l2(torch::relu(l1(s))));
    return torch::tanh(mean(h) + log_std(h).clamp(-20, 2).exp() * torch::randn({s.size(0), kAct}));
  }
};

DualData dual_data() {
  auto policy = std::make_shared<PolicyStandIn>();
  DualData data;
  data.sample_initial_states = [](std::int64_t n) { return torch::randn({n, kObs}); };
  data.sample_replay = [](std::int64_t n) {
    return ReplayBatch{torch::randn({n, kObs}), torch::rand({n, kAct}) * 2 - 1, torch::randn({n}),
                       torch::randn({n, kObs}), torch::zeros({n})};
  };
  data.sample_next_actions = [policy](const torch::Tensor& s, std::int64_t k) {
    return NextActions{policy->sample(s.repeat({k, 1})).view({k, s.size(0), kAct}), {}};
  };
  return data;
}

void BM_TomDualStep(benchmark::State& state) {
  tom::set_threads(1);
  const DualData data = dual_data();
  TomDualSettings settings;
  settings.form = state.range(0) == 0 ? "conjugate" : "conjugate-u";
  TomDual dual(settings, kObs, kAct);
  for (auto _ : state) benchmark::DoNotOptimize(dual.step(data));
  state.SetLabel(settings.form);
}
BENCHMARK(BM_TomDualStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// The conjugate dual's steps as a plan runs them (TomDual::train, 250 steps and its two
// probe checks), on 1 and 2 threads: with 2, each step's samples are drawn on the second
// thread while the step before descends. The counter is the time per step.
void BM_TomDualTrain(benchmark::State& state) {
  tom::set_threads(static_cast<int>(state.range(0)));
  const DualData data = dual_data();
  TomDual dual(TomDualSettings{}, kObs, kAct);
  constexpr int kSteps = 250;
  for (auto _ : state) benchmark::DoNotOptimize(dual.train(data, kSteps).loss);
  state.counters["per_step"] = benchmark::Counter(
      kSteps, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  tom::set_threads(1);
}
BENCHMARK(BM_TomDualTrain)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

void BM_DiscriminatorStep(benchmark::State& state) {
  tom::set_threads(static_cast<int>(state.range(0)));
  at::Generator gen = at::detail::createCPUGenerator(0);
  Discriminator disc(DiscriminatorSettings{}, kObs, kAct);
  const std::int64_t width = 2 * kObs + kAct;
  for (auto _ : state) {
    // Fresh rows each step, as in the peer.
    benchmark::DoNotOptimize(
        disc.step(torch::randn({kBatch, width}), torch::randn({kBatch, width}), gen));
  }
  tom::set_threads(1);
}
BENCHMARK(BM_DiscriminatorStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// The default TOM objective (1000 dual steps, 100 discriminator passes over the 1000-transition
// pool) with the SAC agent of the learning loop, on 200 episodes of 100 random transitions.
void BM_TomPlan(benchmark::State& state) {
  tom::set_threads(1);
  constexpr int kTransitions = 20000, kEpisode = 100;
  tom::data::ReplayBuffer buffer(kTransitions, kObs, kAct);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  for (int i = 0; i < kTransitions; ++i) {
    const auto obs = torch::randn({kObs}, gen, torch::kFloat64), next = torch::randn({kObs}, gen, torch::kFloat64);
    const auto action = torch::rand({kAct}, gen, torch::kFloat64) * 2 - 1;
    buffer.add({obs.data_ptr<double>(), kObs}, {action.data_ptr<double>(), kAct}, 1.0, {next.data_ptr<double>(), kObs},
               i % kEpisode == kEpisode - 1, i % kEpisode == 0);
  }
  tom::agents::Sac agent(tom::agents::SacSettings{}, kObs, kAct, std::vector<double>(kAct, -1.0),
                         std::vector<double>(kAct, 1.0));
  ObjectiveSettings settings;
  settings.choice.name = "tom";
  settings.dual.form = state.range(0) == 0 ? "conjugate" : "conjugate-u";
  auto tom = make_objective(settings, kObs, kAct, torch::kCPU);
  for (auto _ : state) benchmark::DoNotOptimize(tom->plan({buffer, every_view(agent), kTransitions, 0, gen}).fit_weights);
  state.SetLabel(settings.dual.form);
}
BENCHMARK(BM_TomPlan)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
