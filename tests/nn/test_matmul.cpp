#include <gtest/gtest.h>

#include <cmath>

#include "../support.hpp"
#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/nn/flat_mlp.hpp"
#include "tom/nn/matmul.hpp"

namespace {

using tom::nn::Epilogue;
using tom::nn::Precision;
using tom::test::error_of;

// Runs a test body in bf16, restoring fp32 after; skips where the CPU has no bf16.
struct Bf16Scope : tom::nn::MatmulPrecisionScope {
  Bf16Scope() : MatmulPrecisionScope(Precision::bf16) {}
};
#define SKIP_WITHOUT_BF16() \
  if (!tom::nn::cpu_has_bf16()) GTEST_SKIP() << "this CPU has no AVX512-BF16"

torch::Tensor rounded_to_bf16(const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat64); }

// |got - want| <= relative * (|a| @ |b|) entry by entry, the error bound of a product
// whose terms carry that relative error.
void expect_within(const torch::Tensor& got, const torch::Tensor& want, const torch::Tensor& magnitude,
                   double relative) {
  const auto excess = (got.to(torch::kFloat64) - want).abs() - relative * magnitude - 1e-30;
  EXPECT_LE(excess.max().item<double>(), 0.0) << "largest error " << (got.to(torch::kFloat64) - want).abs().max();
}

TEST(Matmul, PrecisionNamesParseAndUnknownOnesAreErrors) {
  EXPECT_EQ(tom::nn::parse_precision("fp32"), Precision::fp32);
  EXPECT_EQ(tom::nn::parse_precision("bf16"), Precision::bf16);
  EXPECT_STREQ(tom::nn::precision_name(Precision::bf16), "bf16");
  EXPECT_NE(error_of([] { tom::nn::parse_precision("fp16"); }).find("fp32, fp32-fused or bf16"), std::string::npos);
}

TEST(Matmul, Bf16IsRefusedExactlyWhereTheCpuLacksIt) {
  if (tom::nn::cpu_has_bf16()) {
    Bf16Scope scope;
    EXPECT_EQ(tom::nn::matmul_precision(), Precision::bf16);
  } else {
    EXPECT_NE(error_of([] { tom::nn::set_matmul_precision(Precision::bf16); }).find("AVX512-BF16"),
              std::string::npos);
    EXPECT_EQ(tom::nn::matmul_precision(), Precision::fp32);
  }
}

TEST(Matmul, Fp32IsLibTorchsOwnProduct) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto a = torch::randn({37, 20}, gen), b = torch::randn({13, 20}, gen), bias = torch::randn({13}, gen);
  auto out = torch::empty({37, 13});
  tom::nn::linear_out(out, a, b.t(), bias, Epilogue::relu);
  EXPECT_TRUE(torch::equal(out, torch::addmm(bias, a, b.t()).relu()));
  EXPECT_TRUE(torch::equal(tom::nn::linear(a, b.t(), bias), torch::addmm(bias, a, b.t())));
}

// Every layout the networks use: plain, either factor transposed, batched, a bias per
// column or per row, ReLU in the epilogue.
struct LayoutCase {
  const char* name;
  torch::Tensor a, b, bias;
  Epilogue epilogue;
};
constexpr std::int64_t M = 45, K = 203, N = 31;
std::vector<LayoutCase> layout_cases() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  return {
      {"plain", torch::randn({M, K}, gen), torch::randn({K, N}, gen), {}, Epilogue::none},
      {"transposed a, bias per column", torch::randn({K, M}, gen).t(), torch::randn({K, N}, gen),
       torch::randn({N}, gen), Epilogue::none},
      {"transposed b, relu", torch::randn({M, K}, gen), torch::randn({N, K}, gen).t(), torch::randn({N}, gen),
       Epilogue::relu},
      {"bias per row", torch::randn({M, K}, gen), torch::randn({K, N}, gen), torch::randn({M, 1}, gen),
       Epilogue::none},
      {"batched", torch::randn({3, M, K}, gen), torch::randn({3, K, N}, gen), torch::randn({3, 1, N}, gen),
       Epilogue::relu},
      {"batched, a broadcast over members", torch::randn({M, K}, gen).unsqueeze(0).expand({3, M, K}),
       torch::randn({3, K, N}, gen), {}, Epilogue::none},
  };
}

// epilogue(a @ b + bias) in float64, from the factors as given.
torch::Tensor exact_linear(const LayoutCase& c, const torch::Tensor& a64, const torch::Tensor& b64) {
  auto exact = torch::matmul(a64, b64);
  if (c.bias.defined()) exact += c.bias.to(torch::kFloat64);
  if (c.epilogue == Epilogue::relu) exact.relu_();
  return exact;
}

// The case's product through nn::linear_out, with the exact product's entry-wise magnitude.
std::pair<torch::Tensor, torch::Tensor> product_and_magnitude(const LayoutCase& c) {
  auto sizes = c.a.sizes().vec();
  sizes.back() = N;
  auto out = torch::full(sizes, 7.0f);
  tom::nn::linear_out(out, c.a, c.b, c.bias, c.epilogue);
  const auto a64 = c.a.to(torch::kFloat64), b64 = c.b.to(torch::kFloat64);
  const auto magnitude = torch::matmul(a64.abs(), b64.abs()) +
                         (c.bias.defined() ? c.bias.abs().to(torch::kFloat64) : torch::zeros({1}, torch::kFloat64));
  return {out, magnitude};
}

// fp32 summation of K terms: at most K roundings of 2^-24 relative to the magnitude.
const double kFp32Sum = K * std::ldexp(1.0, -24);

// fp32-fused is the fp32 product, summed in another order: within fp32 summation of the
// exact product, as LibTorch's own is.
TEST(Matmul, Fp32FusedIsTheFp32ProductToRounding) {
  tom::set_threads(1);
  for (const auto& c : layout_cases()) {
    SCOPED_TRACE(c.name);
    const auto want = exact_linear(c, c.a.to(torch::kFloat64), c.b.to(torch::kFloat64));
    const auto [libtorch, magnitude] = product_and_magnitude(c);
    const tom::nn::MatmulPrecisionScope fused(Precision::fp32_fused);
    const auto [out, unused] = product_and_magnitude(c);
    expect_within(out, want, magnitude, kFp32Sum);
    expect_within(libtorch, want, magnitude, kFp32Sum);
  }
}

// bf16 must be the exact product of the rounded factors up to fp32 summation, and differ
// from the fp32 product by bf16's rounding.
TEST(Matmul, Bf16MultipliesRoundedFactorsAndSumsInFp32) {
  SKIP_WITHOUT_BF16();
  tom::set_threads(1);
  Bf16Scope scope;
  for (const auto& c : layout_cases()) {
    SCOPED_TRACE(c.name);
    const auto [out, magnitude] = product_and_magnitude(c);
    const auto exact_rounded = exact_linear(c, rounded_to_bf16(c.a), rounded_to_bf16(c.b));
    const auto exact = exact_linear(c, c.a.to(torch::kFloat64), c.b.to(torch::kFloat64));
    expect_within(out, exact_rounded, magnitude, kFp32Sum);
    // bf16 factors: each term's relative error is at most about 2 * 2^-9.
    expect_within(out, exact, magnitude, 1.01 * std::ldexp(1.0, -8) + kFp32Sum);
    // ... and that rounding is really there: fp32 factors would be ~100x closer.
    EXPECT_GT((out.to(torch::kFloat64) - exact).abs().max().item<double>(),
              1e-4 * magnitude.max().item<double>());
  }
}

// One shape in its four layouts, one after another: each layout is its own kernel (a
// kernel cached for one layout and run on another computes garbage).
TEST(Matmul, EachLayoutOfAShapeGetsItsOwnKernel) {
  SKIP_WITHOUT_BF16();
  tom::set_threads(1);
  Bf16Scope scope;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const std::int64_t n = 64;
  for (const bool transpose_a : {false, true})
    for (const bool transpose_b : {false, true}) {
      SCOPED_TRACE(std::to_string(transpose_a) + std::to_string(transpose_b));
      const auto a = transpose_a ? torch::randn({n, n}, gen).t() : torch::randn({n, n}, gen);
      const auto b = transpose_b ? torch::randn({n, n}, gen).t() : torch::randn({n, n}, gen);
      auto out = torch::empty({n, n});
      tom::nn::linear_out(out, a, b);
      const auto want = torch::matmul(rounded_to_bf16(a), rounded_to_bf16(b));
      expect_within(out, want, torch::matmul(a.abs(), b.abs()).to(torch::kFloat64), n * std::ldexp(1.0, -24));
    }
}

// linear()'s autograd gradients (a, b, bias; then a without a bias) in `precision` are
// within `tolerance` of fp32's, relative to each gradient's largest entry.
void expect_gradients_near_fp32(Precision precision, double tolerance) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto a0 = torch::randn({4, 64, 50}, gen), b0 = torch::randn({4, 50, 30}, gen),
             bias0 = torch::randn({4, 1, 30}, gen), weights = torch::randn({4, 64, 30}, gen);
  auto gradients = [&](Precision in) {
    const tom::nn::MatmulPrecisionScope scope(in);
    auto a = a0.clone().requires_grad_(), b = b0.clone().requires_grad_(), bias = bias0.clone().requires_grad_();
    (tom::nn::linear(a, b, bias) * weights).sum().backward();
    const auto a_alone = a0.clone().requires_grad_();  // without a bias autograd takes two inputs
    (tom::nn::linear(a_alone, b0) * weights).sum().backward();
    return std::vector<torch::Tensor>{a.grad(), b.grad(), bias.grad(), a_alone.grad()};
  };
  const auto fp32 = gradients(Precision::fp32), other = gradients(precision);
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_LT((other[i] - fp32[i]).abs().max().item<double>(), tolerance * fp32[i].abs().max().item<double>());
  }
  EXPECT_TRUE(torch::allclose(other[2], fp32[2]));  // the bias's gradient is a sum, not a product
}

TEST(Matmul, Bf16GradientsMatchFp32Autograd) {
  SKIP_WITHOUT_BF16();
  expect_gradients_near_fp32(Precision::bf16, 0.02);
}

TEST(Matmul, Fp32FusedGradientsAreFp32AutogradsToRounding) {
  expect_gradients_near_fp32(Precision::fp32_fused, 1e-5);
}

TEST(Matmul, WrongShapesAreErrors) {
  auto out = torch::empty({4, 5});
  EXPECT_NE(error_of([&] { tom::nn::linear_out(out, torch::ones({4, 3}), torch::ones({2, 5})); })
                .find("do not give an output of shape [4, 5]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tom::nn::linear_out(out, torch::ones({4, 3}), torch::ones({3, 5}), torch::ones({3})); })
                .find("does not broadcast"),
            std::string::npos);
}

// The SAC networks' tape (forward output, parameter and input gradients) in `precision`.
std::vector<torch::Tensor> tape_run(const tom::nn::FlatMlp& net, const torch::Tensor& x, const torch::Tensor& grad_out,
                                    Precision precision) {
  const tom::nn::MatmulPrecisionScope scope(precision);
  tom::nn::FlatMlpTape tape(net, x.size(0));
  const auto out = tape.forward(net, x).clone();
  auto param_grad = torch::empty_like(net.parameters());
  const auto input_grad = tape.backward(net, grad_out, param_grad, true).clone();
  return {out, param_grad, input_grad};
}

double relative(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).norm().item<double>() / want.norm().item<double>();
}

// The tape in bf16 computes what autograd computes through the same bf16 products (the
// tape's hand-written backward is right in bf16 too), and stays close to fp32: its output
// within bf16's rounding; its gradients within a few percent, since a ReLU whose input is
// near zero may switch (70 of 65536 units here), which moves a gradient by whole terms,
// not by roundings.
TEST(Matmul, FlatMlpTapeInBf16IsAutogradInBf16AndCloseToFp32) {
  SKIP_WITHOUT_BF16();
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  tom::nn::FlatMlp net({17, 256, 256, 6}, gen);
  const auto x = torch::randn({256, 17}, gen), grad_out = torch::randn({256, 6}, gen);
  const auto fp32 = tape_run(net, x, grad_out, Precision::fp32), bf16 = tape_run(net, x, grad_out, Precision::bf16);
  std::vector<torch::Tensor> autograd;
  {
    Bf16Scope scope;
    const auto params = net.parameters().clone().requires_grad_(), input = x.clone().requires_grad_();
    const auto out = tom::nn::mlp_forward(net.layer_views(params), input);
    (out * grad_out).sum().backward();
    autograd = {out.detach(), params.grad(), input.grad()};
  }
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_LT(relative(bf16[i], autograd[i]), 1e-6);
    EXPECT_GT(relative(bf16[i], fp32[i]), 1e-5);  // rounded: not the fp32 path
    EXPECT_LT(relative(bf16[i], fp32[i]), i == 0 ? 0.01 : 0.1);
  }
}

// With fused bias and ReLU on oneDNN the tape is the fp32 tape up to summation order.
TEST(Matmul, FlatMlpTapeFusedIsTheFp32TapeToRounding) {
  tom::set_threads(1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  tom::nn::FlatMlp net({17, 256, 256, 6}, gen);
  const auto x = torch::randn({256, 17}, gen), grad_out = torch::randn({256, 6}, gen);
  const auto fp32 = tape_run(net, x, grad_out, Precision::fp32),
             fused = tape_run(net, x, grad_out, Precision::fp32_fused);
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_LT(relative(fused[i], fp32[i]), 1e-5);
    EXPECT_FALSE(torch::equal(fused[i], fp32[i]));  // summed in another order: not LibTorch's path
  }
}

}  // namespace
