#pragma once
// The matrix products of the hot networks, in a chosen precision.
//
// fp32 is LibTorch's addmm/baddbmm (OpenBLAS), exactly as before this setting existed.
// fp32-fused multiplies the same float32 factors on oneDNN's kernels, with the bias and
// ReLU applied in the GEMM's epilogue (no pass of its own over the output); it equals
// fp32 up to the order of the sums' roundings.
// bf16 rounds both factors to bfloat16 (nearest even) and multiplies them with oneDNN's
// AVX512-BF16 kernels, summing in fp32, with the bias and ReLU applied in the GEMM's
// epilogue: about twice the fp32 rate on the shapes these networks use. Master weights,
// activations, gradients, Adam moments and losses stay fp32 either way; only the GEMM's
// inputs lose precision (8 bits of mantissa instead of 24).
//
// The precision is process-wide, like the thread count (and like PyTorch's
// torch.set_float32_matmul_precision): every network's products follow it. Only CPU
// tensors use bf16; on other devices every product is LibTorch's fp32.
#include <string>

#include <torch/torch.h>

namespace tom::nn {

enum class Precision { fp32, fp32_fused, bf16 };

const char* precision_name(Precision precision);  // "fp32", "fp32-fused", "bf16"
// Throws tom::Error naming the valid names.
Precision parse_precision(const std::string& name);

// Whether this CPU multiplies bf16 natively (AVX512-BF16).
bool cpu_has_bf16();

// Throws tom::Error when bf16 is asked of a CPU without AVX512-BF16 (emulating it would
// be slower than fp32, which is never what the setting is for).
void set_matmul_precision(Precision precision);
Precision matmul_precision();

// Sets the matmul precision for a scope and restores the one before it on leaving.
class MatmulPrecisionScope {
 public:
  explicit MatmulPrecisionScope(Precision precision) : before_(matmul_precision()) {
    set_matmul_precision(precision);
  }
  ~MatmulPrecisionScope() { set_matmul_precision(before_); }
  MatmulPrecisionScope(const MatmulPrecisionScope&) = delete;
  MatmulPrecisionScope& operator=(const MatmulPrecisionScope&) = delete;

 private:
  Precision before_;
};

enum class Epilogue { none, relu };

// out = epilogue(a @ b + bias), in the process's matmul precision.
// 2-D: a [M, K], b [K, N], out [M, N]; batched: a [E, M, K], b [E, K, N], out [E, M, N].
// bias broadcasts to out ([N], [M, 1], [E, 1, N], ...) or is undefined. Float32 tensors of
// any strides (a transposed view costs nothing); out must not overlap a or b.
void linear_out(const torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b,
                const torch::Tensor& bias = {}, Epilogue epilogue = Epilogue::none);

// The same into a new tensor, differentiable by autograd in a, b and bias (its backward
// products in the same precision).
torch::Tensor linear(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias = {});

}  // namespace tom::nn
