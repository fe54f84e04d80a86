#pragma once
// Statistics for comparing runs across seeds, after Agarwal et al., "Deep RL at the edge
// of the statistical precipice" (NeurIPS 2021): the interquartile mean as the point
// estimate and percentile confidence intervals from a stratified bootstrap (seeds are
// resampled with replacement inside each stratum, e.g. each arm, never across strata).
// No LibTorch here: plain doubles, so this compiles and tests fast.
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace tom::runs {

double mean_of(const std::vector<double>& values);
// The interquartile mean: the mean of what is left after removing floor(n/4) values from
// each end of the sorted list (the convention of scipy.stats.trim_mean(x, 0.25), which
// rliable uses). Below four values nothing is removed, so it equals the mean.
double interquartile_mean(std::vector<double> values);
// The q-quantile (0 <= q <= 1) with linear interpolation between order statistics
// (numpy's default "linear" method).
double quantile_of(std::vector<double> values, double q);
// Area under the piecewise-linear curve through (x, y) (x strictly increasing), divided by
// the x span: the curve's average height. One point gives its y.
double normalized_auc(const std::vector<double>& x, const std::vector<double>& y);

// A small, fully specified generator (splitmix64), so a bootstrap gives the same interval
// on every platform and standard library for the same seed.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform in [0, n), without modulo bias.
  std::uint64_t below(std::uint64_t n);

 private:
  std::uint64_t state_;
};

// A bootstrap seed for one named quantity: the user's seed mixed with a hash of `name`
// (FNV-1a, the same on every platform). A result seeded by what it is, not by its place in
// a table, stays the same whatever else the table holds.
std::uint64_t named_seed(std::uint64_t seed, std::string_view name);

struct Interval {
  double low = 0, high = 0;
};
using Strata = std::vector<std::vector<double>>;
// Percentile interval of `statistic` over `reps` stratified bootstrap resamples of
// `strata` (each stratum resampled with replacement to its own size). Every stratum
// must be non-empty.
Interval stratified_bootstrap_ci(const Strata& strata, const std::function<double(const Strata&)>& statistic,
                                 int reps, double confidence, std::uint64_t seed);

// Welch's unequal-variances t-test of mean(a) - mean(b): the statistic, the
// Welch-Satterthwaite degrees of freedom and the two-sided p-value (Student's t). Needs at
// least two values in each sample; with zero variance in both, p is 1 for equal means
// and 0 otherwise (df is then infinite).
struct WelchTest {
  double t = 0, df = 0, p = 1;
};
WelchTest welch_test(const std::vector<double>& a, const std::vector<double>& b);

// The fewest seeds per arm (at least 2) with which Welch's two-sided test at `alpha` detects
// a true difference of `difference` with probability `power`, when the arms' values have
// standard deviations sd_a and sd_b (noncentral t on the Welch-Satterthwaite degrees of
// freedom). Infinite for a zero difference, or beyond 100000 seeds.
double seeds_for_power(double difference, double sd_a, double sd_b, double alpha = 0.05, double power = 0.8);

// The sample standard deviation (n - 1 in the denominator); needs two values.
double sample_sd(const std::vector<double>& values);

// P(X > Y) for X drawn from `a` and Y from `b`, ties counting one half: the probability
// of improvement of rliable (the Mann-Whitney U statistic over |a| |b|).
double probability_of_improvement(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace tom::runs
