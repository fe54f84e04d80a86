#pragma once
// Input checks shared by the models: every bad tensor becomes a tom::Error that names it.
#include <string>

#include <torch/torch.h>

#include "tom/core/shapes.hpp"

namespace tom::models {

// Throws tom::Error unless `tensor` is a defined floating-point tensor whose shape
// matches `sizes` (entries < 0 match any size) and whose entries are all finite.
void check_tensor(const torch::Tensor& tensor, const std::string& name, std::vector<std::int64_t> sizes);

}  // namespace tom::models
