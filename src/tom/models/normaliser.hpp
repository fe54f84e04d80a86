#pragma once
// Per-column standardisation, fitted on a model's training set and stored with it, so a
// loaded model normalises its inputs exactly as when it was trained.
#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace tom::models {

class Normaliser {
 public:
  // Identity statistics (mean 0, std 1) for `dim` columns.
  explicit Normaliser(std::int64_t dim = 0, torch::Device device = torch::kCPU);

  // Sets mean and std from rows [N, dim]. Columns with (near) zero spread keep std 1, so
  // a constant column maps to 0 instead of dividing by zero.
  void fit(const torch::Tensor& rows);
  torch::Tensor normalise(const torch::Tensor& rows) const;    // (x - mean) / std
  torch::Tensor denormalise(const torch::Tensor& rows) const;  // z * std + mean

  const torch::Tensor& mean() const { return mean_; }
  const torch::Tensor& std() const { return std_; }
  std::int64_t dim() const { return mean_.size(0); }

  void save(torch::serialize::OutputArchive& archive, const std::string& prefix) const;
  // Throws tom::Error naming the entry when the stored column count differs from dim().
  void load(torch::serialize::InputArchive& archive, const std::string& prefix);

 private:
  torch::Tensor mean_, std_;
};

}  // namespace tom::models
