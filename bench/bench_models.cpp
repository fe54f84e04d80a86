// Learned dynamics models: a training step of each model at Hopper's sizes (obs 11,
// action 3, batch 256) and a 100k-row model rollout step with a SAC-sized policy
// stand-in, the same work as the PyTorch peer's mdn_train_step, ensemble_train_step and
// rollout_100k (shared/bench/pytorch_peer.py).
#include <benchmark/benchmark.h>

#include "tom/core/threads.hpp"
#include "tom/models/ensemble.hpp"
#include "tom/models/mdn.hpp"
#include "tom/nn/adam.hpp"

namespace {

constexpr std::int64_t kObs = 11, kAct = 3;

tom::models::Transitions random_transitions(std::int64_t n) {
  torch::manual_seed(0);
  return {torch::randn({n, kObs}), torch::rand({n, kAct}) * 2 - 1, torch::randn({n}), torch::randn({n, kObs})};
}

// Settings for timing gradient steps through fit(): one epoch of `steps` minibatches; the
// small held-out set keeps the per-fit evaluation a few percent of the time.
tom::models::FitSettings one_epoch(int steps) {
  tom::models::FitSettings fit;
  fit.max_epochs = 1;
  fit.max_batches_per_epoch = steps;
  fit.max_holdout = 256;
  return fit;
}

// Argument: the thread count (2: each gradient step's two halves at once).
template <class Model, class Settings>
void train_steps(benchmark::State& state, Settings settings) {
  tom::set_threads(static_cast<int>(state.range(0)));
  constexpr int kSteps = 50;
  settings.fit = one_epoch(kSteps);
  Model model(kObs, kAct, settings, /*seed=*/1);
  const auto data = random_transitions(256 * kSteps + 512);
  std::int64_t steps = 0;
  for (auto _ : state) steps += model.fit(data).gradient_steps;
  tom::set_threads(1);
  state.counters["ms_per_step"] =
      benchmark::Counter(static_cast<double>(steps) / 1e3, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_EnsembleTrainStep(benchmark::State& state) {
  train_steps<tom::models::ProbabilisticEnsemble>(state, tom::models::EnsembleSettings{});
}
BENCHMARK(BM_EnsembleTrainStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MdnTrainStep(benchmark::State& state) {
  train_steps<tom::models::MixtureDensityNetwork>(state, tom::models::MdnSettings{});
}
BENCHMARK(BM_MdnTrainStep)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The peer's policy: a 256-unit ReLU body, Gaussian heads, tanh squashing.
struct PolicyStandIn {
  torch::nn::Sequential body{torch::nn::Linear(kObs, 256), torch::nn::ReLU(), torch::nn::Linear(256, 256),
                             torch::nn::ReLU()};
  torch::nn::Linear mean_head{256, kAct}, log_std_head{256, kAct};
  torch::Tensor act(const torch::Tensor& obs) {
    const auto h = body->forward(obs);
    const auto std = log_std_head->forward(h).clamp(-20, 2).exp();
    return torch::tanh(mean_head->forward(h) + std * torch::randn_like(std));
  }
};

template <class Model, class Settings>
void rollout_100k(benchmark::State& state, const Settings& settings) {
  tom::set_threads(1);
  torch::NoGradGuard no_grad;
  constexpr std::int64_t kRows = 100000, kChunk = 50000;
  Model model(kObs, kAct, settings, /*seed=*/1);
  PolicyStandIn policy;
  for (auto _ : state) {
    for (std::int64_t start = 0; start < kRows; start += kChunk) {
      const auto obs = torch::randn({kChunk, kObs});
      benchmark::DoNotOptimize(model.sample(obs, policy.act(obs)).next_obs.data_ptr());
    }
  }
}

void BM_MdnRollout100k(benchmark::State& state) {
  rollout_100k<tom::models::MixtureDensityNetwork>(state, tom::models::MdnSettings{});
}
BENCHMARK(BM_MdnRollout100k)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_EnsembleRollout100k(benchmark::State& state) {
  rollout_100k<tom::models::ProbabilisticEnsemble>(state, tom::models::EnsembleSettings{});
}
BENCHMARK(BM_EnsembleRollout100k)->Unit(benchmark::kMillisecond)->UseRealTime();

// One Adam step through nn::adam_update (the fused CPU pass) at the sizes it runs at: a
// SAC network (Hopper critic, 70k parameters) and the MBPO ensemble (7 members, 0.9M).
void BM_AdamUpdate(benchmark::State& state) {
  tom::set_threads(1);
  const auto n = state.range(0);
  auto values = torch::randn({n}), grad = torch::randn({n}), first = torch::zeros({n}), second = torch::zeros({n});
  std::int64_t step = 0;
  for (auto _ : state) tom::nn::adam_update(values, grad, first, second, ++step, {.lr = 1e-3}, 5e-5);
}
BENCHMARK(BM_AdamUpdate)->Arg(69889)->Arg(898968)->Unit(benchmark::kMicrosecond);

}  // namespace
