// The BLAS the tests run on (the kernel set select_blas_kernel chose for this CPU)
// computes float GEMMs correctly.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tom/core/blas_kernel.hpp"

TEST(BlasKernel, GemmAgreesWithAFloat64Reference) { EXPECT_TRUE(tom::blas_gemm_is_accurate()); }

TEST(BlasKernel, RestartLeavesNoFallbackBehind) {
  // The marker of the checked restart is removed, so processes this one starts (sweep
  // workers) inherit the chosen kernels and do not check them again.
  EXPECT_EQ(std::getenv("TOM_BLAS_FALLBACK_CORETYPE"), nullptr);
}
