#pragma once
// OpenBLAS chooses its kernels from the CPU model it recognises. On a model it does not
// know (virtual machines often report a generic "Intel Xeon Processor"), Debian's OpenBLAS
// 0.3.21 falls back to its SSE3 "Prescott" kernels, which made one SAC update 3.5x slower
// than the AVX-512 kernels the same CPU runs. The choice is made when the library loads,
// from OPENBLAS_CORETYPE, so the program restarts itself once with that variable set.

namespace tom {

// Call first thing in main(). Leaves everything alone when OPENBLAS_CORETYPE is already
// set (the user's choice wins), when the BLAS is not OpenBLAS, or when OpenBLAS's own
// choice is at least as capable as the CPU's instruction sets. Otherwise sets
// OPENBLAS_CORETYPE (SkylakeX on Intel CPUs with AVX-512; Haswell on CPUs with AVX2 and
// FMA, including AMD ones, where 0.3.21's AVX-512 kernels are not trusted) and
// re-executes /proc/self/exe with the same arguments. Returns if the restart fails.
void select_blas_kernel(char** argv);

// The kernel set OpenBLAS runs ("SkylakeX", "Prescott", ...), or "" if the BLAS is not
// OpenBLAS.
const char* blas_kernel_name();

}  // namespace tom
