#include "tom/core/shapes.hpp"

namespace tom {

std::string shape_of(const torch::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string out = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) out += (d ? ", " : "") + std::to_string(t.size(d));
  return out + "]";
}

}  // namespace tom
