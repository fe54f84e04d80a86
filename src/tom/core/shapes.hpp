#pragma once
// Tensor shapes in error messages.
#include <string>

#include <torch/torch.h>

namespace tom {

// "[256, 11]", or "undefined" for an undefined tensor.
std::string shape_of(const torch::Tensor& t);

}  // namespace tom
