#include "tom/core/blas_kernel.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <string>

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

// The best kernel set this CPU can run (as far as we trust OpenBLAS 0.3.21 on it).
Kernel best_kernel() {
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vl");
  if (avx512 && __builtin_cpu_is("intel")) return {"SkylakeX", 3};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"Haswell", 2};
  return {nullptr, -1};
}

}  // namespace

const char* blas_kernel_name() {
  using CoreName = char* (*)();
  const auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return core_name ? core_name() : "";
}

void select_blas_kernel(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::string current = blas_kernel_name();
  if (current.empty()) return;
  const int current_rank = kernel_rank(current);
  const Kernel best = best_kernel();
  if (current_rank < 0 || best.rank <= current_rank) return;
  if (setenv("OPENBLAS_CORETYPE", best.name, 1) != 0) return;
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "note: could not restart with OPENBLAS_CORETYPE=%s (%s); running on OpenBLAS's %s kernels\n",
               best.name, std::strerror(errno), current.c_str());
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace tom
