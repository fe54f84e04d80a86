// One layer's matrix product (nn::linear_out) at the networks' shapes, in each precision:
// the GEMM rate that bf16 and oneDNN's fused fp32 buy before anything around it.
// Arguments: rows M, inputs K, outputs N, precision (0 fp32, 1 bf16, 2 fp32-fused), bias
// + ReLU epilogue (0/1). One thread.
#include <benchmark/benchmark.h>

#include "tom/core/threads.hpp"
#include "tom/nn/matmul.hpp"

namespace {

void BM_Linear(benchmark::State& state) {
  const auto M = state.range(0), K = state.range(1), N = state.range(2);
  constexpr tom::nn::Precision kPrecisions[] = {tom::nn::Precision::fp32, tom::nn::Precision::bf16,
                                                tom::nn::Precision::fp32_fused};
  const auto precision = kPrecisions[state.range(3)];
  if (precision == tom::nn::Precision::bf16 && !tom::nn::cpu_has_bf16()) {
    state.SkipWithError("this CPU has no AVX512-BF16");
    return;
  }
  tom::set_threads(1);
  const auto before = tom::nn::matmul_precision();
  tom::nn::set_matmul_precision(precision);
  const bool fused = state.range(4) != 0;
  const auto a = torch::randn({M, K}), weight = torch::randn({N, K}), bias = torch::randn({N});
  auto out = torch::empty({M, N});
  for (auto _ : state)
    tom::nn::linear_out(out, a, weight.t(), fused ? bias : torch::Tensor(),
                        fused ? tom::nn::Epilogue::relu : tom::nn::Epilogue::none);
  tom::nn::set_matmul_precision(before);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * M * K * N * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(tom::nn::precision_name(precision));
}

// SAC's and the MDN's layers (batch 256; 200-400 units) and a rollout's (10000 rows).
BENCHMARK(BM_Linear)
    ->ArgsProduct({{256}, {200}, {200}, {0, 1, 2}, {0, 1}})
    ->ArgsProduct({{256}, {14}, {256}, {0, 1, 2}, {1}})
    ->ArgsProduct({{256}, {400}, {400}, {0, 1, 2}, {1}})
    ->ArgsProduct({{10000}, {200}, {200}, {0, 1, 2}, {1}})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
