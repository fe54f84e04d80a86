#include "tom/models/normaliser.hpp"

#include "tom/core/error.hpp"
#include "tom/models/checks.hpp"

namespace tom::models {

Normaliser::Normaliser(std::int64_t dim, torch::Device device)
    : mean_(torch::zeros({dim}, torch::TensorOptions().device(device))),
      std_(torch::ones({dim}, torch::TensorOptions().device(device))) {}

void Normaliser::fit(const torch::Tensor& rows) {
  if (rows.dim() != 2 || rows.size(1) != dim())
    fail("normaliser expects rows [N, {}], got {}", dim(), shape_of(rows));
  if (rows.size(0) == 0) fail("normaliser needs at least one row");
  torch::NoGradGuard no_grad;
  auto [std, mean] = torch::std_mean(rows.to(mean_.options()), /*dim=*/{0}, /*unbiased=*/false);
  mean_ = mean;
  std_ = torch::where(std < 1e-6, torch::ones_like(std), std);
}

torch::Tensor Normaliser::normalise(const torch::Tensor& rows) const { return (rows - mean_) / std_; }

torch::Tensor Normaliser::denormalise(const torch::Tensor& rows) const { return torch::addcmul(mean_, rows, std_); }

void Normaliser::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "mean", mean_.cpu());
  archive.write(prefix + "std", std_.cpu());
}

void Normaliser::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  torch::Tensor mean, std;
  archive.read(prefix + "mean", mean);
  archive.read(prefix + "std", std);
  for (const auto& [name, stored] : {std::pair{"mean", mean}, std::pair{"std", std}})
    if (stored.dim() != 1 || stored.size(0) != dim())
      fail("checkpoint entry {}{} has shape {}, expected [{}]", prefix, name, shape_of(stored), dim());
  if (!torch::isfinite(mean).all().item<bool>() || !(std > 0).all().item<bool>())
    fail("checkpoint entry {}mean/std holds non-finite or non-positive values", prefix);
  mean_ = mean.to(mean_.options());
  std_ = std.to(std_.options());
}

}  // namespace tom::models
