#include "tom/core/blas_kernel.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace tom {
namespace {

// How capable a kernel set is: 0 SSE only, 1 AVX, 2 AVX2 + FMA, 3 AVX-512; -1 unknown
// names, which are left alone.
int kernel_rank(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* sse : {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai",
                          "coppermine", "northwood", "banias", "opteron", "opteron_sse3", "barcelona"})
    if (name == sse) return 0;
  for (const char* avx : {"sandybridge", "bulldozer", "piledriver"})
    if (name == avx) return 1;
  for (const char* avx2 : {"haswell", "zen", "steamroller", "excavator"})
    if (name == avx2) return 2;
  for (const char* avx512 : {"skylakex", "cooperlake", "sapphirerapids"})
    if (name == avx512) return 3;
  return -1;
}

struct Kernel {
  const char* name;
  int rank;
};

// The best kernel set this CPU can run. On AMD the AVX-512 kernels are checked after the
// restart (blas_gemm_is_accurate), since OpenBLAS 0.3.21 predates its own Zen 4 support.
Kernel best_kernel() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  if (avx512) return {"SkylakeX", 3};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"Haswell", 2};
  return {nullptr, -1};
}

// Set across the restart: the kernel set OpenBLAS chose itself, to return to if the
// chosen one fails the accuracy check.
constexpr const char* kFallbackVariable = "TOM_BLAS_FALLBACK_CORETYPE";
// Set after a failed check, so that the fallback is not taken for a user's choice.
constexpr const char* kFailedVariable = "TOM_BLAS_CHECK_FAILED";

using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

// C = op(A) op(B) (column-major, as BLAS) by the BLAS, checked entry by entry against a
// float64 sum: the error may be a few float roundings of sum |a||b|, no more.
bool gemm_case_is_accurate(Sgemm sgemm, bool transpose_a, bool transpose_b, int m, int n, int k,
                           std::uint32_t& state) {
  auto next = [&state] {  // a small LCG: inputs in [-1, 1), the same on every run
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / static_cast<float>(1 << 23) - 1.0f;
  };
  const int rows_a = transpose_a ? k : m, rows_b = transpose_b ? n : k;
  // Indexing in size_t (column-major, leading dimensions rows_a, rows_b and m).
  const std::size_t M = m, N = n, K = k;
  std::vector<float> a(M * K), b(K * N), c(M * N, 0.0f);
  for (float& x : a) x = next();
  for (float& x : b) x = next();
  const float one = 1.0f, zero = 0.0f;
  const char ta = transpose_a ? 'T' : 'N', tb = transpose_b ? 'T' : 'N';
  sgemm(&ta, &tb, &m, &n, &k, &one, a.data(), &rows_a, b.data(), &rows_b, &zero, c.data(), &m);
  auto a_at = [&](std::size_t i, std::size_t p) { return transpose_a ? a[i * K + p] : a[p * M + i]; };
  auto b_at = [&](std::size_t p, std::size_t j) { return transpose_b ? b[p * N + j] : b[j * K + p]; };
  for (std::size_t j = 0; j < N; ++j)
    for (std::size_t i = 0; i < M; ++i) {
      double sum = 0.0, magnitude = 0.0;
      for (std::size_t p = 0; p < K; ++p) {
        const double term = static_cast<double>(a_at(i, p)) * b_at(p, j);
        sum += term;
        magnitude += std::abs(term);
      }
      const double error = std::abs(c[j * M + i] - sum);
      if (!(error <= 4.0 * k * 6e-8 * magnitude + 1e-30)) return false;
    }
  return true;
}

}  // namespace

bool blas_gemm_is_accurate() {
  const auto sgemm = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  if (!sgemm) return true;
  std::uint32_t state = 12345u;
  for (const int m : {1, 7, 16, 33, 97})
    for (const int n : {1, 5, 24})
      for (const int k : {1, 17, 130, 300})
        for (const bool transpose_a : {false, true})
          for (const bool transpose_b : {false, true})
            if (!gemm_case_is_accurate(sgemm, transpose_a, transpose_b, m, n, k, state)) return false;
  return true;
}

const char* blas_kernel_name() {
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return core_name ? core_name() : "";
}

std::string blas_kernel_advice() {
  const std::string current = blas_kernel_name();
  if (current.empty() || std::getenv("OPENBLAS_CORETYPE") == nullptr || std::getenv(kFailedVariable) != nullptr)
    return "";
  const int rank = kernel_rank(current);
  const Kernel best = best_kernel();
  if (rank < 0 || rank >= best.rank) return "";
  return "OPENBLAS_CORETYPE=" + std::string(std::getenv("OPENBLAS_CORETYPE")) + " keeps OpenBLAS on its " + current +
         " kernels, but this CPU can run its faster " + (best.rank == 3 ? "AVX-512" : "AVX2") +
         " ones (unset OPENBLAS_CORETYPE to let tom choose; docs/results.md, \"Kernels\")";
}

void select_blas_kernel(char** argv) {
  if (const char* fallback = std::getenv(kFallbackVariable)) {
    // This is the restart: keep the chosen kernels only if they compute correctly.
    const std::string own_choice = fallback;
    unsetenv(kFallbackVariable);
    if (blas_gemm_is_accurate()) return;
    std::fprintf(stderr, "note: OpenBLAS's %s kernels failed the accuracy check on this CPU; restarting on its %s kernels\n",
                 blas_kernel_name(), own_choice.c_str());
    if (setenv("OPENBLAS_CORETYPE", own_choice.c_str(), 1) == 0 && setenv(kFailedVariable, "1", 1) == 0) execv("/proc/self/exe", argv);
    std::fprintf(stderr, "error: could not restart (%s)\n", std::strerror(errno));
    std::exit(1);
  }
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::string current = blas_kernel_name();
  if (current.empty()) return;
  const int current_rank = kernel_rank(current);
  const Kernel best = best_kernel();
  if (current_rank < 0 || best.rank <= current_rank) return;
  if (setenv("OPENBLAS_CORETYPE", best.name, 1) != 0 || setenv(kFallbackVariable, current.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "note: could not restart with OPENBLAS_CORETYPE=%s (%s); running on OpenBLAS's %s kernels\n",
               best.name, std::strerror(errno), current.c_str());
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kFallbackVariable);
}

}  // namespace tom
