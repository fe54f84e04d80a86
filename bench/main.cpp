// Benchmark main: OpenBLAS's kernels first (tom/core/blas_kernel.hpp), as in `tom`.
#include <benchmark/benchmark.h>

#include "tom/core/allocator.hpp"
#include "tom/core/blas_kernel.hpp"

int main(int argc, char** argv) {
  tom::select_blas_kernel(argv);
  tom::keep_large_blocks_in_heap();
  benchmark::AddCustomContext("openblas_kernel", tom::blas_kernel_name());
  if (const std::string advice = tom::blas_kernel_advice(); !advice.empty())
    benchmark::AddCustomContext("openblas_note", advice);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
