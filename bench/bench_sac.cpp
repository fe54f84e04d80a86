// SAC update at Hopper dimensions (obs 11, action 3, batch 256), the hot loop of MBPO.
// Compare with /work/shared/bench/pytorch_peer.py --only sac_update (same networks).
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include "tom/agents/sac.hpp"
#include "tom/core/threads.hpp"
#include "tom/core/worker_thread.hpp"
#include "tom/data/replay_buffer.hpp"

namespace {

constexpr int kObs = 11, kAction = 3;

tom::data::Batch random_batch(std::int64_t n, torch::Generator& gen) {
  return {torch::randn({n, kObs}, gen), torch::rand({n, kAction}, gen) * 2 - 1, torch::randn({n}, gen),
          torch::randn({n, kObs}, gen), torch::zeros({n})};
}

// Times SAC updates on one fixed random batch, after 10 warm-up updates.
void time_updates(benchmark::State& state) {
  tom::agents::SacSettings settings;
  tom::agents::Sac sac(settings, kObs, kAction, std::vector<double>(kAction, -1.0), std::vector<double>(kAction, 1.0));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto batch = random_batch(settings.batch_size, gen);
  for (int i = 0; i < 10; ++i) sac.update(batch);
  for (auto _ : state) benchmark::DoNotOptimize(sac.update(batch));
}

// Argument: thread count given to tom::set_threads (2 and more: update() runs its work
// in pairs on the caller and a worker thread).
void BM_SacUpdate(benchmark::State& state) {
  tom::set_threads(static_cast<int>(state.range(0)));
  time_updates(state);
  tom::set_threads(1);
}
BENCHMARK(BM_SacUpdate)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// The alternative thread policy for 2 cores: LibTorch single-threaded, OpenBLAS
// parallelising the gemms itself (measured against tom::set_threads(2) above).
void BM_SacUpdateBlasThreads(benchmark::State& state) {
  tom::set_threads(1);
  using SetThreads = void (*)(int);
  auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!set_blas) {
    state.SkipWithError("the BLAS in use is not OpenBLAS");
    return;
  }
  set_blas(static_cast<int>(state.range(0)));
  time_updates(state);
  tom::set_threads(1);
}
BENCHMARK(BM_SacUpdateBlasThreads)->Arg(2)->Unit(benchmark::kMillisecond);

// The cost of one fork-join of two empty closures on the SAC worker thread (update()
// does 6 per step with 2 threads).
void BM_WorkerThreadRoundTrip(benchmark::State& state) {
  tom::WorkerThread worker;
  for (auto _ : state) worker.run([] {}, [] {});
}
BENCHMARK(BM_WorkerThreadRoundTrip)->Unit(benchmark::kMicrosecond);

void BM_SacActSingle(benchmark::State& state) {
  tom::set_threads(1);
  tom::agents::Sac sac({}, kObs, kAction, std::vector<double>(kAction, -1.0), std::vector<double>(kAction, 1.0));
  const std::vector<double> obs(kObs, 0.1);
  for (auto _ : state) benchmark::DoNotOptimize(sac.act(obs, false));
}
BENCHMARK(BM_SacActSingle)->Unit(benchmark::kMicrosecond);

void BM_ReplayAdd(benchmark::State& state) {
  tom::data::ReplayBuffer buffer(100000, kObs, kAction);
  const std::vector<double> obs(kObs, 0.1), action(kAction, 0.2);
  for (auto _ : state) buffer.add(obs, action, 1.0, obs, false, false);
}
BENCHMARK(BM_ReplayAdd);

void BM_ReplaySample(benchmark::State& state) {
  tom::set_threads(1);
  tom::data::ReplayBuffer buffer(1000000, kObs, kAction);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  buffer.add_batch(random_batch(1000000, gen));
  for (auto _ : state) benchmark::DoNotOptimize(buffer.sample(256, gen));
}
BENCHMARK(BM_ReplaySample)->Unit(benchmark::kMicrosecond);

}  // namespace
