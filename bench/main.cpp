// Benchmark main: OpenBLAS's kernels first (tom/core/blas_kernel.hpp), as in `tom`.
// --precision=fp32|fp32-fused|bf16 (default fp32) sets the networks' matmul precision
// (tom/nn/matmul.hpp) for every benchmark but BM_Linear, which names its own.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "tom/core/allocator.hpp"
#include "tom/core/blas_kernel.hpp"
#include "tom/core/error.hpp"
#include "tom/nn/matmul.hpp"

int main(int argc, char** argv) {
  tom::select_blas_kernel(argv);
  tom::keep_large_blocks_in_heap();
  benchmark::AddCustomContext("openblas_kernel", tom::blas_kernel_name());
  if (const std::string advice = tom::blas_kernel_advice(); !advice.empty())
    benchmark::AddCustomContext("openblas_note", advice);
  // Taken out of argv before Google Benchmark reads it.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--precision=", 0) != 0) {
      argv[kept++] = argv[i];
      continue;
    }
    try {
      tom::nn::set_matmul_precision(tom::nn::parse_precision(arg.substr(12)));
    } catch (const tom::Error& error) {
      std::fprintf(stderr, "error: %s\n", error.what());
      return 1;
    }
  }
  argc = kept;
  benchmark::AddCustomContext("precision", tom::nn::precision_name(tom::nn::matmul_precision()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
