#include "tom/nn/matmul.hpp"

#include <ATen/Parallel.h>

#include <immintrin.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::nn {
namespace {

std::atomic<Precision> process_precision{Precision::fp32};

using DataType = dnnl::memory::data_type;
using Dims = dnnl::memory::dims;

// Sizes and strides of a tensor as oneDNN takes them, at `rank` dimensions (leading 1s
// added). A size-1 dimension's stride is never stepped, so it is set as in a contiguous
// layout: LibTorch leaves it arbitrary, oneDNN checks it.
struct Layout {
  Dims sizes, strides;
};
Layout layout_of(const torch::Tensor& t, std::size_t rank) {
  Layout layout{Dims(rank, 1), Dims(rank, 1)};
  const std::size_t offset = rank - static_cast<std::size_t>(t.dim());
  for (std::int64_t d = 0; d < t.dim(); ++d) {
    layout.sizes[offset + d] = t.size(d);
    layout.strides[offset + d] = t.stride(d);
  }
  for (std::size_t d = rank; d-- > 0;)
    if (layout.sizes[d] == 1) layout.strides[d] = d + 1 < rank ? layout.strides[d + 1] * layout.sizes[d + 1] : 1;
  return layout;
}
Dims contiguous_strides(const Dims& sizes) {
  Dims strides(sizes.size(), 1);
  for (std::size_t d = sizes.size(); d-- > 1;) strides[d - 1] = strides[d] * sizes[d];
  return strides;
}

// oneDNN's objects for one thread: its engine and stream, the primitives made so far
// (making one costs tens of microseconds; a training step runs the same few shapes
// thousands of times) and the copies of the two factors it makes.
struct Kernels {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<std::vector<std::int64_t>, dnnl::matmul> matmuls;
  torch::Tensor rounded[2];       // bf16: the factors rounded
  torch::Tensor dense_copies[2];  // a factor that is no dense block (a broadcast), copied; kept until the next product
};
Kernels& kernels() {
  thread_local Kernels k;
  return k;
}

// n floats rounded to bf16 (nearest even, as the hardware's VCVTNEPS2BF16). Only called
// where the CPU has AVX512-BF16 (bf16 is refused elsewhere).
__attribute__((target("avx512f,avx512bf16,avx512vl"))) void round_to_bf16(const float* from, std::uint16_t* to,
                                                                          std::int64_t n) {
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(from + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(to + i, tail, (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(tail, from + i)));
  }
}

// A factor (float32) as oneDNN memory of `type`, in its own layout: oneDNN's kernels take
// transposed factors at full speed, so a transposed view is passed (and in bf16 rounded
// into the thread's buffer `slot`) as the dense block of memory it is, not transposed.
dnnl::memory factor_memory(Kernels& k, const torch::Tensor& source, int slot, DataType type) {
  torch::Tensor dense = source;
  if (!source.is_non_overlapping_and_dense()) dense = k.dense_copies[slot] = source.contiguous();
  const Layout layout = layout_of(dense, static_cast<std::size_t>(dense.dim()));
  if (type == DataType::f32)
    return dnnl::memory(dnnl::memory::desc(layout.sizes, type, layout.strides), k.engine, dense.data_ptr());
  auto& buffer = k.rounded[slot];
  if (!buffer.defined() || buffer.numel() < dense.numel())
    buffer = torch::empty({dense.numel()}, torch::TensorOptions().dtype(torch::kBFloat16));
  // A dense tensor's elements are the numel() floats from its lowest address on.
  round_to_bf16(dense.data_ptr<float>(), reinterpret_cast<std::uint16_t*>(buffer.data_ptr()), dense.numel());
  return dnnl::memory(dnnl::memory::desc(layout.sizes, DataType::bf16, layout.strides), k.engine, buffer.data_ptr());
}

void check_factors(const torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  const bool shapes_match =
      a.defined() && b.defined() && out.defined() && (a.dim() == 2 || a.dim() == 3) && b.dim() == a.dim() &&
      out.dim() == a.dim() && a.size(-1) == b.size(-2) && out.size(-2) == a.size(-2) && out.size(-1) == b.size(-1) &&
      (a.dim() == 2 || (a.size(0) == b.size(0) && out.size(0) == a.size(0)));
  if (!shapes_match)
    fail("matrix product: factors {} and {} do not give an output of shape {}", shape_of(a), shape_of(b), shape_of(out));
  // A bias broadcasts when each of its sizes is 1 or the output's.
  for (std::int64_t d = 1; bias.defined() && d <= bias.dim(); ++d)
    if (d > out.dim() || (bias.size(-d) != 1 && bias.size(-d) != out.size(-d)))
      fail("matrix product: a bias of shape {} does not broadcast to the output's {}", shape_of(bias), shape_of(out));
}

// Whether oneDNN's fast kernels take this bias in their epilogue: one value per output
// column only. A bias per row or per batch member sends oneDNN 2.6 to its reference
// kernel (the ensemble's train step ran 300x slower), so such a bias is added after the product.
bool epilogue_takes(const torch::Tensor& bias) {
  for (std::int64_t d = 0; d + 1 < bias.dim(); ++d)
    if (bias.size(d) != 1) return false;
  return true;
}

// The product on oneDNN's kernels with factors of `type` (CPU float32 tensors, checked).
void onednn_linear_out(const torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b,
                       const torch::Tensor& bias, Epilogue epilogue, DataType type) {
  if (bias.defined() && !epilogue_takes(bias)) {
    onednn_linear_out(out, a, b, {}, Epilogue::none, type);
    auto result = out;
    result.add_(bias);
    if (epilogue == Epilogue::relu) result.relu_();
    return;
  }
  // oneDNN's threads are OpenMP's, as LibTorch's: set this thread's count as LibTorch does.
  at::internal::lazy_init_num_threads();
  Kernels& k = kernels();
  const dnnl::memory a_memory = factor_memory(k, a, 0, type);
  const dnnl::memory b_memory = factor_memory(k, b, 1, type);
  const auto rank = static_cast<std::size_t>(out.dim());
  const Layout out_layout = layout_of(out, rank);
  std::vector<std::int64_t> key{static_cast<std::int64_t>(type), static_cast<std::int64_t>(epilogue), a.size(-1),
                                bias.defined()};
  for (const auto& factor : {a_memory, b_memory}) {
    const dnnl::memory::desc desc = factor.get_desc();  // the strides live in it
    const auto* strides = desc.data.format_desc.blocking.strides;
    key.insert(key.end(), strides, strides + rank);
  }
  key.insert(key.end(), out_layout.sizes.begin(), out_layout.sizes.end());
  key.insert(key.end(), out_layout.strides.begin(), out_layout.strides.end());
  dnnl::memory::desc bias_desc;
  torch::Tensor bias_values = bias;
  if (bias.defined()) {
    // One value per column: contiguous [1, ..., 1, N].
    bias_values = bias.reshape({-1}).contiguous();
    Dims bias_sizes(rank, 1);
    bias_sizes.back() = out.size(-1);
    if (bias_values.numel() != bias_sizes.back()) bias_values = bias_values.expand({bias_sizes.back()}).contiguous();
    bias_desc = dnnl::memory::desc(bias_sizes, DataType::f32, contiguous_strides(bias_sizes));
  }
  const dnnl::memory::desc out_desc(out_layout.sizes, DataType::f32, out_layout.strides);
  auto found = k.matmuls.find(key);
  if (found == k.matmuls.end()) {
    dnnl::primitive_attr attributes;
    if (epilogue == Epilogue::relu) {
      dnnl::post_ops post;
      post.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      attributes.set_post_ops(post);
    }
    const dnnl::matmul::desc description(a_memory.get_desc(), b_memory.get_desc(), bias_desc, out_desc);
    found = k.matmuls.emplace(key, dnnl::matmul(dnnl::matmul::primitive_desc(description, attributes, k.engine))).first;
  }
  std::unordered_map<int, dnnl::memory> arguments{
      {DNNL_ARG_SRC, a_memory}, {DNNL_ARG_WEIGHTS, b_memory}, {DNNL_ARG_DST, dnnl::memory(out_desc, k.engine, out.data_ptr())}};
  if (bias.defined()) arguments.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_desc, k.engine, bias_values.data_ptr()));
  found->second.execute(k.stream, arguments);
  k.stream.wait();
}

// The factors' type on oneDNN in this precision, or none for LibTorch's own product.
std::optional<DataType> onednn_type(const torch::Tensor& t) {
  if (!t.device().is_cpu()) return std::nullopt;
  switch (process_precision.load(std::memory_order_relaxed)) {
    case Precision::fp32: return std::nullopt;
    case Precision::fp32_fused: return DataType::f32;
    case Precision::bf16: return DataType::bf16;
  }
  return std::nullopt;
}

// autograd's view of linear() on oneDNN: its backward is two more products with factors
// of the forward's type. Without a bias it takes two inputs (autograd refuses an
// undefined one).
struct OnednnLinear : torch::autograd::Function<OnednnLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& a,
                               const torch::Tensor& b, const torch::Tensor& bias) {
    const DataType type = *onednn_type(a);
    context->saved_data["type"] = static_cast<std::int64_t>(type);
    context->save_for_backward({a, b});
    context->saved_data["bias_sizes"] = bias.defined() ? bias.sizes().vec() : std::vector<std::int64_t>{};
    context->saved_data["has_bias"] = bias.defined();
    auto sizes = a.sizes().vec();
    sizes.back() = b.size(-1);
    auto out = torch::empty(sizes, a.options());
    check_factors(out, a, b, bias);
    onednn_linear_out(out, a, b, bias, Epilogue::none, type);
    return out;
  }
  static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& a,
                               const torch::Tensor& b) {
    return forward(context, a, b, torch::Tensor());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    const auto saved = context->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto& grad = grads[0];
    const auto type = static_cast<DataType>(context->saved_data["type"].toInt());
    torch::Tensor grad_a, grad_b;
    if (context->needs_input_grad(0)) {
      grad_a = torch::empty_like(a, torch::MemoryFormat::Contiguous);
      onednn_linear_out(grad_a, grad, b.transpose(-1, -2), {}, Epilogue::none, type);
    }
    if (context->needs_input_grad(1)) {
      grad_b = torch::empty_like(b, torch::MemoryFormat::Contiguous);
      onednn_linear_out(grad_b, a.transpose(-1, -2), grad, {}, Epilogue::none, type);
    }
    if (!context->saved_data["has_bias"].toBool()) return {grad_a, grad_b};
    torch::Tensor grad_bias;
    if (context->needs_input_grad(2)) grad_bias = grad.sum_to_size(context->saved_data["bias_sizes"].toIntVector());
    return {grad_a, grad_b, grad_bias};
  }
};

}  // namespace

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::fp32: return "fp32";
    case Precision::fp32_fused: return "fp32-fused";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  for (const Precision precision : {Precision::fp32, Precision::fp32_fused, Precision::bf16})
    if (name == precision_name(precision)) return precision;
  fail("unknown precision '{}' (choose fp32, fp32-fused or bf16)", name);
}

bool cpu_has_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
}

void set_matmul_precision(Precision precision) {
  if (precision == Precision::bf16 && !cpu_has_bf16())
    fail("precision bf16 needs a CPU with AVX512-BF16, and this one has none (grep avx512_bf16 /proc/cpuinfo); "
         "use precision fp32");
  process_precision.store(precision);
}

Precision matmul_precision() { return process_precision.load(); }

void linear_out(const torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias,
                Epilogue epilogue) {
  check_factors(out, a, b, bias);
  if (const auto type = onednn_type(out)) {
    if (a.scalar_type() != torch::kFloat32 || b.scalar_type() != torch::kFloat32 ||
        out.scalar_type() != torch::kFloat32 || (bias.defined() && bias.scalar_type() != torch::kFloat32))
      fail("matrix product in {}: the factors, bias and output must be float32 (master values)",
           precision_name(matmul_precision()));
    onednn_linear_out(out, a, b, bias, epilogue, *type);
    return;
  }
  auto result = out;  // a handle: the *_out ops take a non-const reference
  if (out.dim() == 2) {
    if (bias.defined()) at::addmm_out(result, bias, a, b);
    else at::mm_out(result, a, b);
  } else {
    if (bias.defined()) at::baddbmm_out(result, bias, a, b);
    else at::bmm_out(result, a, b);
  }
  if (epilogue == Epilogue::relu) result.relu_();
}

torch::Tensor linear(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias) {
  if (!onednn_type(a) || a.scalar_type() != torch::kFloat32) {
    if (a.dim() == 3) return bias.defined() ? torch::baddbmm(bias, a, b) : torch::bmm(a, b);
    return bias.defined() ? torch::addmm(bias, a, b) : torch::mm(a, b);
  }
  const bool graph = torch::GradMode::is_enabled() &&
                     (a.requires_grad() || b.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (graph) return bias.defined() ? OnednnLinear::apply(a, b, bias) : OnednnLinear::apply(a, b);
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  auto out = torch::empty(sizes, a.options());
  nn::linear_out(out, a, b, bias);
  return out;
}

}  // namespace tom::nn
