#include "tom/data/weights.hpp"

#include <torch/torch.h>

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::data {

Weights Weights::checked(const torch::Tensor& raw, std::int64_t rows, std::string_view source) {
  if (!raw.defined() || raw.dim() != 1 || raw.size(0) != rows)
    fail("{} gave weights of shape {}, expected [{}] (one per replay transition)", source, shape_of(raw), rows);
  if (!raw.is_floating_point()) fail("{} gave weights that are not floating point", source);
  const auto w = raw.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  if (!torch::isfinite(w).all().item<bool>()) fail("{} gave NaN/inf weights", source);
  if ((w < 0).any().item<bool>()) fail("{} gave negative weights", source);
  const double mean = w.mean().item<double>();
  if (!(mean > 0)) fail("{} gave all-zero weights", source);
  return Weights(w / mean);
}

Weights Weights::resampled(const torch::Tensor& rows) const {
  return uniform() ? Weights() : Weights(values_.index_select(0, rows.to(torch::kCPU)));
}

torch::Tensor Weights::values_or_ones(std::int64_t rows) const {
  return uniform() ? torch::ones({rows}, torch::kFloat32) : values_;
}

}  // namespace tom::data
