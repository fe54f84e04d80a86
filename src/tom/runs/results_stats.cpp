#include "tom/runs/results_stats.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tom/core/error.hpp"

namespace tom::runs {

double mean_of(const std::vector<double>& values) {
  if (values.empty()) fail("mean of no values");
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double interquartile_mean(std::vector<double> values) {
  if (values.empty()) fail("interquartile mean of no values");
  std::sort(values.begin(), values.end());
  const std::size_t cut = values.size() / 4;
  double sum = 0;
  for (std::size_t i = cut; i < values.size() - cut; ++i) sum += values[i];
  return sum / static_cast<double>(values.size() - 2 * cut);
}

double quantile_of(std::vector<double> values, double q) {
  if (values.empty()) fail("quantile of no values");
  if (!(q >= 0 && q <= 1)) fail("quantile {} is outside [0, 1]", q);
  std::sort(values.begin(), values.end());
  const double h = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(h));
  if (lo + 1 >= values.size()) return values.back();
  return values[lo] + (h - static_cast<double>(lo)) * (values[lo + 1] - values[lo]);
}

double normalized_auc(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.empty() || x.size() != y.size()) fail("area under a curve needs equally many x and y values (got {} and {})",
                                              x.size(), y.size());
  if (x.size() == 1) return y[0];
  double area = 0;
  for (std::size_t i = 1; i < x.size(); ++i) {
    if (!(x[i] > x[i - 1])) fail("area under a curve needs increasing x ({} after {})", x[i], x[i - 1]);
    area += 0.5 * (y[i] + y[i - 1]) * (x[i] - x[i - 1]);
  }
  return area / (x.back() - x.front());
}

std::uint64_t SplitMix64::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t SplitMix64::below(std::uint64_t n) {
  // Reject the top partial block so every residue is equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t r;
  do r = next();
  while (r >= limit);
  return r % n;
}

Interval stratified_bootstrap_ci(const Strata& strata, const std::function<double(const Strata&)>& statistic,
                                 int reps, double confidence, std::uint64_t seed) {
  if (strata.empty()) fail("bootstrap of no strata");
  for (const auto& s : strata)
    if (s.empty()) fail("bootstrap with an empty stratum");
  if (reps < 1) fail("bootstrap needs at least one resample (got {})", reps);
  if (!(confidence > 0 && confidence < 1)) fail("confidence {} is outside (0, 1)", confidence);
  SplitMix64 rng(seed);
  Strata sample = strata;
  std::vector<double> stats(static_cast<std::size_t>(reps));
  for (auto& stat : stats) {
    for (std::size_t k = 0; k < strata.size(); ++k)
      for (auto& v : sample[k]) v = strata[k][rng.below(strata[k].size())];
    stat = statistic(sample);
  }
  const double alpha = 1 - confidence;
  return {quantile_of(stats, alpha / 2), quantile_of(stats, 1 - alpha / 2)};
}

}  // namespace tom::runs
