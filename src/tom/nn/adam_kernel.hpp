#pragma once
// The fused CPU pass behind nn::adam_update (adam.hpp), on raw float buffers; kept free
// of LibTorch so that its one translation unit compiles fast with its own flags.
#include <cstdint>

namespace tom::nn {

struct AdamCoefficients {
  float beta1, beta2, eps, weight_decay;
  float step_size;         // lr / (1 - beta1^step)
  float root_correction2;  // sqrt(1 - beta2^step)
};

// One Adam step over n floats, vectorised for the widest instruction set the CPU has
// (chosen once, at the first call). grad is only read.
void adam_kernel(float* values, const float* grad, float* first_moment, float* second_moment, std::int64_t n,
                 const AdamCoefficients& c);

}  // namespace tom::nn
