#pragma once
// The published MBPO and SAC learning curves kept in assets/reference_curves (compiled
// in, with their attribution there): what figures overlay and what the aggregate across
// tasks normalises by. No LibTorch here.
#include <string>
#include <utility>
#include <vector>

namespace tom::runs {

// The published curve (mean) of `algo` on `env` (a "-v5" form reads its task's): step ->
// return, in step order. Empty if the task has none.
std::vector<std::pair<double, double>> published_curve(const std::string& algo, const std::string& env);

}  // namespace tom::runs
