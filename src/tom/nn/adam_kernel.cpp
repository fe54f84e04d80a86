// The fused Adam pass. Compiled on its own (not in a unity batch, no LibTorch header)
// with auto-vectorisation and without errno on sqrt (CMakeLists.txt), once per
// instruction set; the widest the CPU supports is picked at the first call. The body is
// one loop so that each element's seven reads and writes happen in one pass over memory.
#include <cmath>

#include "tom/nn/adam_kernel.hpp"

namespace tom::nn {

namespace {

using Kernel = void (*)(float*, const float*, float*, float*, std::int64_t, const AdamCoefficients&);

[[gnu::always_inline]] inline void adam_body(float* __restrict values, const float* __restrict grad,
                                             float* __restrict first, float* __restrict second, std::int64_t n,
                                             const AdamCoefficients& c) {
  const float beta1 = c.beta1, beta2 = c.beta2, decay = c.weight_decay, eps = c.eps;
  const float keep1 = 1.0f - beta1, keep2 = 1.0f - beta2;
  const float step_size = c.step_size, root_correction2 = c.root_correction2;
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = grad[i] + decay * values[i];
    const float m = beta1 * first[i] + keep1 * g;
    const float v = beta2 * second[i] + keep2 * g * g;
    first[i] = m;
    second[i] = v;
    values[i] -= step_size * (m / (std::sqrt(v) / root_correction2 + eps));
  }
}

[[gnu::target("avx512f")]] void adam_avx512(float* values, const float* grad, float* first, float* second,
                                              std::int64_t n, const AdamCoefficients& c) {
  adam_body(values, grad, first, second, n, c);
}

[[gnu::target("avx2,fma")]] void adam_avx2(float* values, const float* grad, float* first, float* second,
                                             std::int64_t n, const AdamCoefficients& c) {
  adam_body(values, grad, first, second, n, c);
}

void adam_baseline(float* values, const float* grad, float* first, float* second, std::int64_t n,
                   const AdamCoefficients& c) {
  adam_body(values, grad, first, second, n, c);
}

Kernel widest_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return adam_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return adam_avx2;
  return adam_baseline;
}

}  // namespace

void adam_kernel(float* values, const float* grad, float* first_moment, float* second_moment, std::int64_t n,
                 const AdamCoefficients& c) {
  static const Kernel kernel = widest_kernel();
  kernel(values, grad, first_moment, second_moment, n, c);
}

}  // namespace tom::nn
