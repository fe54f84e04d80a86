#include "tom/results/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <boost/math/distributions/non_central_t.hpp>
#include <boost/math/distributions/students_t.hpp>

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

std::uint64_t named_seed(std::uint64_t seed, std::string_view name) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ULL;
  SplitMix64 mix(seed ^ hash);
  return mix.next();
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

double sample_sd(const std::vector<double>& values) {
  if (values.size() < 2) fail("a standard deviation needs two values (got {})", values.size());
  const double m = mean_of(values);
  double sum = 0;
  for (double v : values) sum += (v - m) * (v - m);
  return std::sqrt(sum / static_cast<double>(values.size() - 1));
}

WelchTest welch_test(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2)
    fail("Welch's test needs two values per sample (got {} and {})", a.size(), b.size());
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  const double va = std::pow(sample_sd(a), 2) / na, vb = std::pow(sample_sd(b), 2) / nb;
  const double diff = mean_of(a) - mean_of(b);
  WelchTest test;
  if (va + vb == 0) {
    test.t = diff == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), diff);
    test.df = std::numeric_limits<double>::infinity();
    test.p = diff == 0 ? 1 : 0;
    return test;
  }
  test.t = diff / std::sqrt(va + vb);
  test.df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  const boost::math::students_t dist(test.df);
  test.p = 2 * boost::math::cdf(boost::math::complement(dist, std::abs(test.t)));
  return test;
}

double seeds_for_power(double difference, double sd_a, double sd_b, double alpha, double power) {
  if (!(alpha > 0 && alpha < 1) || !(power > 0 && power < 1))
    fail("power analysis: alpha and power must be in (0, 1) (got {} and {})", alpha, power);
  const double va = sd_a * sd_a, vb = sd_b * sd_b;
  if (difference == 0 || !std::isfinite(difference)) return std::numeric_limits<double>::infinity();
  if (va + vb == 0) return 2;
  // Welch's test with n seeds per arm: t is noncentral with parameter d / sqrt((va + vb) / n)
  // on the Welch-Satterthwaite degrees of freedom.
  constexpr int kMostSeeds = 100000;
  for (int n = 2; n <= kMostSeeds; ++n) {
    const double df = (n - 1) * (va + vb) * (va + vb) / (va * va + vb * vb);
    const double shift = std::abs(difference) / std::sqrt((va + vb) / n);
    const double critical = boost::math::quantile(boost::math::complement(boost::math::students_t(df), alpha / 2));
    const boost::math::non_central_t t(df, shift);
    if (boost::math::cdf(boost::math::complement(t, critical)) + boost::math::cdf(t, -critical) >= power) return n;
  }
  return std::numeric_limits<double>::infinity();
}

double probability_of_improvement(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) fail("the probability of improvement needs values in both samples");
  double wins = 0;
  for (double x : a)
    for (double y : b) wins += x > y ? 1.0 : x == y ? 0.5 : 0.0;
  return wins / (static_cast<double>(a.size()) * static_cast<double>(b.size()));
}

}  // namespace tom::runs
