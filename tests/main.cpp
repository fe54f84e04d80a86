// Test main of every test binary: OpenBLAS's kernels first (tom/core/blas_kernel.hpp), so
// the tests run at the speed `tom` runs at.
#include <gtest/gtest.h>

#include "tom/core/allocator.hpp"
#include "tom/core/blas_kernel.hpp"

int main(int argc, char** argv) {
  tom::select_blas_kernel(argv);
  tom::keep_large_blocks_in_heap();
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
