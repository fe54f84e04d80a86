#include "tom/objectives/model_objective.hpp"

#include <algorithm>

#include "tom/core/error.hpp"

namespace tom::objectives {

namespace {

template <class View>
const View& offered(const View* view, const char* objective, const char* what) {
  if (view == nullptr) fail("model objective '{}' needs {}; the backbone offers none", objective, what);
  return *view;
}

}  // namespace

const agents::ActionSampler& FitContext::policy(const char* objective) const {
  return offered(views.policy, objective, "a policy to sample actions from");
}
const agents::ValueFunction& FitContext::value(const char* objective) const {
  return offered(views.value, objective, "a value function");
}
const agents::PolicySnapshots& FitContext::snapshots(const char* objective) const {
  return offered(views.snapshots, objective, "snapshots of the policy");
}

models::Transitions replay_transitions(const data::ReplayBuffer& replay) {
  const data::Batch all = replay.all();
  return {all.obs, all.action, all.reward, all.next_obs, {}};
}

WeightSummary summarise_weights(const data::Weights& weights, const torch::Tensor& insertion_index,
                                std::int64_t window, int bins) {
  const std::int64_t n = insertion_index.size(0);
  WeightSummary s;
  if (n == 0) return s;
  if (!weights.uniform() && weights.values().size(0) != n)
    fail("weight summary: {} weights for {} transitions", weights.values().size(0), n);
  torch::NoGradGuard no_grad;
  const auto raw = weights.values_or_ones(n);
  const auto w = weights.uniform() ? raw : raw / raw.mean().item<double>();
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
