#include "tom/objectives/model_objective.hpp"

#include <algorithm>

#include "tom/core/error.hpp"

namespace tom::objectives {

torch::Tensor checked_weights(const torch::Tensor& weights, std::int64_t rows, const std::string& objective) {
  if (!weights.defined()) return torch::ones({rows}, torch::kFloat32);
  if (weights.dim() != 1 || weights.size(0) != rows)
    fail("objective '{}' gave weights of shape {}, expected [{}]", objective, c10::str(weights.sizes()), rows);
  const auto w = weights.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  if (!torch::isfinite(w).all().item<bool>()) fail("objective '{}' gave NaN/inf weights", objective);
  if ((w < 0).any().item<bool>()) fail("objective '{}' gave negative weights", objective);
  const double mean = w.mean().item<double>();
  if (!(mean > 0)) fail("objective '{}' gave all-zero weights", objective);
  return w / mean;
}

WeightSummary summarise_weights(const torch::Tensor& weights, const torch::Tensor& insertion_index,
                                std::int64_t window, int bins) {
  const std::int64_t n = insertion_index.size(0);
  WeightSummary s;
  if (n == 0) return s;
  torch::NoGradGuard no_grad;
  const auto w = checked_weights(weights, n, "summary");
  const auto by_age = w.index_select(0, torch::argsort(insertion_index.to(torch::kCPU)));  // oldest first
  const std::int64_t k = std::min(window, n);
  s.oldest_mean = by_age.narrow(0, 0, k).mean().item<double>();
  s.newest_mean = by_age.narrow(0, n - k, k).mean().item<double>();
  s.effective_sample_size = w.sum().square().item<double>() / w.square().sum().item<double>();
  s.max = w.max().item<double>();
  s.age_bins.resize(bins);
  for (int b = 0; b < bins; ++b) {
    // Bin b covers rows [n b / bins, n (b+1) / bins); with fewer rows than bins, a bin
    // takes the row at its position so every bin has a value.
    const std::int64_t begin = n * b / bins, end = std::max(begin + 1, n * (b + 1) / bins);
    s.age_bins[b] = by_age.narrow(0, std::min(begin, n - 1), std::min(end, n) - std::min(begin, n - 1))
                        .mean()
                        .item<double>();
  }
  return s;
}

}  // namespace tom::objectives
