#include "tom/models/checks.hpp"

#include "tom/core/error.hpp"

namespace tom::models {

void check_tensor(const torch::Tensor& tensor, const std::string& name, std::vector<std::int64_t> sizes) {
  if (!tensor.defined()) fail("{} is missing", name);
  bool shape_ok = tensor.dim() == static_cast<std::int64_t>(sizes.size());
  for (std::size_t i = 0; shape_ok && i < sizes.size(); ++i)
    shape_ok = sizes[i] < 0 || tensor.size(static_cast<std::int64_t>(i)) == sizes[i];
  if (!shape_ok) {
    std::vector<std::string> wanted;
    for (auto size : sizes) wanted.push_back(size < 0 ? "N" : std::to_string(size));
    fail("{} has shape {}, expected [{}]", name, shape_of(tensor), join(wanted));
  }
  if (!tensor.is_floating_point()) fail("{} must hold floating-point numbers", name);
  if (!torch::isfinite(tensor).all().item<bool>()) fail("{} contains NaN or infinite values", name);
}

}  // namespace tom::models
