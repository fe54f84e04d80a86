#include "tom/core/threads.hpp"

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include <torch/torch.h>

#include "tom/core/error.hpp"

namespace tom {

void set_threads(int threads) {
  if (threads < 1) fail("--threads must be at least 1 (got {})", threads);
  // OpenBLAS reads OPENBLAS_NUM_THREADS when it is loaded, before main runs, so set the
  // count through its API; looked up at run time since the BLAS in use is chosen by the
  // system's alternatives and may not be OpenBLAS.
  using SetThreads = void (*)(int);
  if (auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set_blas(1);
  torch::set_num_threads(threads);
  // glibc returns the top of the heap to the OS after every training step and faults it
  // back in on the next (LibTorch frees its large temporaries each step); keeping 256 MiB
  // of pad made a dual or discriminator step about 3x faster here.
  mallopt(M_TOP_PAD, 256 << 20);
  static bool interop_set = false;  // LibTorch allows setting this only once per process
  if (!interop_set) {
    torch::set_num_interop_threads(1);
    interop_set = true;
  }
}

int available_cores() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) return std::max(1, CPU_COUNT(&allowed));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace tom
