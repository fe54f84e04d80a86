#pragma once
// OpenBLAS chooses its kernels from the CPU model it recognises, and Debian's 0.3.21
// often chooses poorly:
// - on a model it does not know (virtual machines often report a generic "Intel Xeon
//   Processor") it falls back to its SSE3 "Prescott" kernels, which made one SAC update
//   3.5x slower than the AVX-512 kernels the same CPU runs;
// - on AMD CPUs with AVX-512 (Zen 4 and later) it runs its AVX2 "Haswell" kernels, which
//   made the ensemble's train step 1.7x slower than the AVX-512 "SkylakeX" ones here.
// The choice is made when the library loads, from OPENBLAS_CORETYPE, so the program
// restarts itself once with that variable set, then checks that the kernels it chose
// compute correctly (float GEMMs against a float64 reference) and restarts on
// OpenBLAS's own choice if they do not.

#include <string>

namespace tom {

// Call first thing in main(). Leaves everything alone when OPENBLAS_CORETYPE is already
// set by the user, when the BLAS is not OpenBLAS, or when OpenBLAS's own choice is at
// least as capable as the CPU's instruction sets. Otherwise sets OPENBLAS_CORETYPE
// (SkylakeX on CPUs with AVX-512, Haswell on CPUs with AVX2 and FMA) and re-executes
// /proc/self/exe with the same arguments. Returns if a restart fails.
void select_blas_kernel(char** argv);

// The kernel set OpenBLAS runs ("SkylakeX", "Prescott", ...), or "" if the BLAS is not
// OpenBLAS.
const char* blas_kernel_name();

// A sentence for the user when their OPENBLAS_CORETYPE holds OpenBLAS to weaker kernels
// than this CPU runs, else "".
std::string blas_kernel_advice();

// Whether the BLAS's sgemm agrees with a float64 reference, within float rounding, on
// shapes and transpositions that reach every edge case of a blocked kernel (sizes below,
// at and above the register and cache blocks). True when the BLAS has no sgemm_.
bool blas_gemm_is_accurate();

}  // namespace tom
