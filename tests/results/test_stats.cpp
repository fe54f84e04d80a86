// Statistics behind `tom compare`, against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "tom/core/error.hpp"
#include "tom/results/stats.hpp"

using namespace tom::runs;

TEST(ResultsStats, InterquartileMeanDropsAQuarterFromEachEnd) {
  // 8 values: drop 2 from each end, mean of 3,4,5,6.
  EXPECT_DOUBLE_EQ(interquartile_mean({8, 1, 7, 2, 6, 3, 5, 4}), 4.5);
  // 5 values: floor(5/4) = 1 from each end: mean of 2,3,4; the outlier 100 is gone.
  EXPECT_DOUBLE_EQ(interquartile_mean({100, 1, 2, 3, 4}), 3.0);
  // Fewer than 4: nothing is dropped, the IQM is the mean.
  EXPECT_DOUBLE_EQ(interquartile_mean({1, 2, 6}), 3.0);
  EXPECT_DOUBLE_EQ(interquartile_mean({5}), 5.0);
  // 12 values: drop 3 from each end: mean of -1, 0, 0, 1, 2, 4 is 1.
  EXPECT_DOUBLE_EQ(interquartile_mean({-100, -50, -9, -1, 0, 0, 1, 2, 4, 90, 95, 1000}), 1.0);
  EXPECT_THROW(interquartile_mean({}), tom::Error);
}

TEST(ResultsStats, MeanQuantileAndAreaUnderCurve) {
  EXPECT_DOUBLE_EQ(mean_of({1, 2, 6}), 3.0);
  EXPECT_DOUBLE_EQ(quantile_of({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile_of({4, 1, 3, 2}, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile_of({4, 1, 3, 2}, 1.0), 4.0);
  EXPECT_DOUBLE_EQ(quantile_of({4, 1, 3, 2}, 0.0), 1.0);
  // Trapezoids: (0+10)/2*10 + (10+10)/2*10 = 150 over a span of 20 -> 7.5.
  EXPECT_DOUBLE_EQ(normalized_auc({0, 10, 20}, {0, 10, 10}), 7.5);
  // Unequal spacing: (2+4)/2*1 + (4+0)/2*3 = 3 + 6 = 9 over 4 -> 2.25.
  EXPECT_DOUBLE_EQ(normalized_auc({1, 2, 5}, {2, 4, 0}), 2.25);
  EXPECT_DOUBLE_EQ(normalized_auc({7}, {3}), 3.0);
  EXPECT_THROW(normalized_auc({0, 0}, {1, 2}), tom::Error);
  EXPECT_THROW(normalized_auc({0, 1}, {1}), tom::Error);
}

TEST(ResultsStats, SplitMixMatchesTheReferenceSequenceAndIsUnbiased) {
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFULL);  // splitmix64's first output from state 0
  SplitMix64 r2(42);
  std::vector<int> counts(3);
  for (int i = 0; i < 30000; ++i) ++counts[r2.below(3)];
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);
}

namespace {
double iqm0(const Strata& s) { return interquartile_mean(s[0]); }
double diff01(const Strata& s) { return interquartile_mean(s[0]) - interquartile_mean(s[1]); }
}  // namespace

TEST(ResultsStats, BootstrapOfTwoValuesCoversExactlyTheirRange) {
  // Resamples of {0, 1}: mean 0 (p 1/4), 0.5 (p 1/2), 1 (p 1/4), so the 2.5 % and 97.5 %
  // percentiles are 0 and 1.
  const Interval ci = stratified_bootstrap_ci({{0.0, 1.0}}, iqm0, 4000, 0.95, 7);
  EXPECT_DOUBLE_EQ(ci.low, 0.0);
  EXPECT_DOUBLE_EQ(ci.high, 1.0);
  // A constant sample has a zero-width interval.
  const Interval flat = stratified_bootstrap_ci({{3.0, 3.0, 3.0}}, iqm0, 500, 0.95, 1);
  EXPECT_DOUBLE_EQ(flat.low, 3.0);
  EXPECT_DOUBLE_EQ(flat.high, 3.0);
}

TEST(ResultsStats, BootstrapIntervalContainsTheTruthAndExcludesFarValues) {
  std::vector<double> values(20);
  std::iota(values.begin(), values.end(), 0.0);  // 0..19, IQM 9.5
  const Interval ci = stratified_bootstrap_ci({values}, iqm0, 2000, 0.95, 3);
  EXPECT_LT(ci.low, 9.5);
  EXPECT_GT(ci.high, 9.5);
  EXPECT_GT(ci.low, 5.0);
  EXPECT_LT(ci.high, 14.0);
  // Same seed, same interval; the interval narrows as the confidence drops.
  const Interval again = stratified_bootstrap_ci({values}, iqm0, 2000, 0.95, 3);
  EXPECT_EQ(ci.low, again.low);
  EXPECT_EQ(ci.high, again.high);
  const Interval narrow = stratified_bootstrap_ci({values}, iqm0, 2000, 0.5, 3);
  EXPECT_GT(narrow.low, ci.low);
  EXPECT_LT(narrow.high, ci.high);
}

TEST(ResultsStats, DifferenceIntervalExcludesZeroOnlyForARealDifference) {
  std::vector<double> base(10), better(10), same(10);
  for (int i = 0; i < 10; ++i) base[i] = i, better[i] = 100 + i, same[i] = 9 - i;
  const Interval up = stratified_bootstrap_ci({better, base}, diff01, 2000, 0.95, 5);
  EXPECT_GT(up.low, 90.0);  // contains 100, excludes 0
  EXPECT_LT(up.high, 110.0);
  EXPECT_LT(up.low, 100.0);
  EXPECT_GT(up.high, 100.0);
  const Interval none = stratified_bootstrap_ci({same, base}, diff01, 2000, 0.95, 5);
  EXPECT_LT(none.low, 0.0);
  EXPECT_GT(none.high, 0.0);
}

TEST(ResultsStats, StrataAreResampledSeparately) {
  // Pooled resampling would mix the 0s and 10s; stratified resampling never does.
  const auto only_first = [](const Strata& s) { return mean_of(s[0]); };
  const Interval ci = stratified_bootstrap_ci({{0, 0, 0}, {10, 10, 10}}, only_first, 1000, 0.95, 9);
  EXPECT_EQ(ci.low, 0.0);
  EXPECT_EQ(ci.high, 0.0);
  EXPECT_THROW(stratified_bootstrap_ci({{1.0}, {}}, only_first, 10, 0.95, 0), tom::Error);
  EXPECT_THROW(stratified_bootstrap_ci({{1.0}}, only_first, 0, 0.95, 0), tom::Error);
  EXPECT_THROW(stratified_bootstrap_ci({{1.0}}, only_first, 10, 1.5, 0), tom::Error);
}

TEST(ResultsStats, WelchTestMatchesAHandIntegratedValue) {
  // t and df by hand; p by integrating Student's t density numerically (no library).
  const WelchTest w = welch_test({1, 2, 3, 4}, {2, 4, 6, 8, 10});
  EXPECT_NEAR(w.t, -2.25144, 1e-4);
  EXPECT_NEAR(w.df, 5.52079, 1e-4);
  EXPECT_NEAR(w.p, 0.06913, 2e-4);
  EXPECT_NEAR(welch_test({2, 4, 6, 8, 10}, {1, 2, 3, 4}).t, 2.25144, 1e-4);  // antisymmetric
  const WelchTest flat = welch_test({3, 3}, {3, 3});
  EXPECT_EQ(flat.p, 1.0);
  EXPECT_EQ(welch_test({3, 3}, {4, 4}).p, 0.0);
  EXPECT_THROW(welch_test({1}, {1, 2}), tom::Error);
}

TEST(ResultsStats, SeedsForPowerMatchTheTwoSampleTTestTables) {
  // Cohen's d = 1 needs 17 per group and d = 0.5 64 (alpha 0.05 two-sided, power 0.8).
  EXPECT_EQ(seeds_for_power(1.0, 1.0, 1.0), 17);
  EXPECT_EQ(seeds_for_power(-0.5, 1.0, 1.0), 64);
  EXPECT_GT(seeds_for_power(1.0, 1.0, 1.0, 0.05, 0.9), 17);  // more power, more seeds
  EXPECT_TRUE(std::isinf(seeds_for_power(0.0, 1.0, 1.0)));
  EXPECT_EQ(seeds_for_power(1.0, 0.0, 0.0), 2);
  EXPECT_THROW(seeds_for_power(1.0, 1.0, 1.0, 0.0), tom::Error);
}

TEST(ResultsStats, ProbabilityOfImprovementCountsPairsAndHalfTies) {
  EXPECT_DOUBLE_EQ(probability_of_improvement({3, 4}, {1, 2}), 1.0);
  EXPECT_DOUBLE_EQ(probability_of_improvement({1, 2}, {3, 4}), 0.0);
  EXPECT_DOUBLE_EQ(probability_of_improvement({2, 5}, {2, 3}), 0.625);  // (0.5 + 0 + 1 + 1) / 4
  EXPECT_THROW(probability_of_improvement({}, {1}), tom::Error);
  EXPECT_NEAR(sample_sd({1, 2, 3, 4}), std::sqrt(5.0 / 3.0), 1e-12);
}

TEST(ResultsStats, NamedSeedsDependOnTheNameAndTheSeedOnly) {
  EXPECT_EQ(named_seed(0, "tom at 300"), named_seed(0, "tom at 300"));
  EXPECT_NE(named_seed(0, "tom at 300"), named_seed(0, "tom at 200"));
  EXPECT_NE(named_seed(0, "tom at 300"), named_seed(1, "tom at 300"));
  // FNV-1a's offset basis for the empty name, then one splitmix64 step: fixed on every platform.
  SplitMix64 expected(0xcbf29ce484222325ULL);
  EXPECT_EQ(named_seed(0, ""), expected.next());
}
