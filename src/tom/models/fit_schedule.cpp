#include "tom/models/fit_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <torch/torch.h>

namespace tom::models {

EpochSampler::EpochSampler(const FitSettings& settings, std::int64_t members, std::int64_t rows,
                           const torch::Tensor& sample_weights, bool bootstrap, torch::Generator& gen)
    : members_(members),
      rows_(rows),
      batch_(settings.batch_size),
      draw_(settings.epoch == "draw"),
      by_weight_(settings.weighting == "sample" && !(sample_weights == sample_weights[0]).all().item<bool>()) {
  // Batches in one pass: ceil(n / batch), or floor(n / batch) (at least one) in whole batches.
  const auto per_pass = settings.epoch == "pass-drop-last" ? std::max<std::int64_t>(1, rows / batch_)
                                                          : (rows + batch_ - 1) / batch_;
  const std::int64_t cap = settings.max_batches_per_epoch;
  steps_ = draw_ ? (cap > 0 ? cap : per_pass) : (cap > 0 ? std::min(per_pass, cap) : per_pass);
  if (by_weight_) weights_ = sample_weights.to(torch::kCPU, torch::kFloat64);
  if (!draw_ && bootstrap && members > 1)
    member_rows_ = torch::randint(rows, {members, rows}, gen, torch::kInt64);
  device_ = sample_weights.device();
}

torch::Tensor EpochSampler::next(torch::Generator& gen) const {
  torch::Tensor rows;
  if (by_weight_) {
    rows = torch::multinomial(weights_, members_ * steps_ * batch_, /*replacement=*/true, gen)
               .view({members_, steps_ * batch_});
  } else if (draw_) {
    rows = torch::randint(rows_, {members_, steps_ * batch_}, gen, torch::kInt64);
  } else {
    std::vector<torch::Tensor> shuffled;
    for (std::int64_t m = 0; m < members_; ++m) {
      const auto order = torch::randperm(rows_, gen, torch::kInt64);
      shuffled.push_back(member_rows_.defined() ? member_rows_[m].index_select(0, order) : order);
    }
    rows = torch::stack(shuffled);
  }
  return rows.to(device_);
}

EarlyStopping::EarlyStopping(std::int64_t members, int patience, double min_improvement)
    : best_(members, std::numeric_limits<double>::infinity()), patience_(patience), min_improvement_(min_improvement) {}

bool EarlyStopping::update(const std::vector<double>& scores) {
  bool improved = false;
  for (std::size_t m = 0; m < best_.size(); ++m) {
    if (std::isinf(best_[m]) || best_[m] - scores[m] > min_improvement_ * std::abs(best_[m])) {
      best_[m] = scores[m];
      improved = true;
    }
  }
  epochs_without_improvement_ = improved ? 0 : epochs_without_improvement_ + 1;
  return epochs_without_improvement_ >= patience_;
}

}  // namespace tom::models
