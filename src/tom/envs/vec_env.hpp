#pragma once
// n copies of one task stepped together, in Gymnasium's vector form: observations,
// rewards and end flags as rows, and the next-step autoreset of Gymnasium 1.0 (the step
// after a copy's episode ended resets that copy, ignores its action and reports reward 0).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tom/envs/env.hpp"
#include "tom/envs/registry.hpp"

namespace tom::envs {

struct VecStep {
  std::vector<double> obs;         // [n * obs_dim], row-major
  std::vector<double> reward;      // [n]
  std::vector<std::uint8_t> terminated, truncated;  // [n], 0 or 1
};

class VecEnv {
 public:
  // Throws tom::Error for an unknown task or copies < 1.
  VecEnv(const std::string& name, int copies, const EnvOptions& options = {});

  int copies() const { return static_cast<int>(envs_.size()); }
  const EnvSpec& spec() const { return envs_.front()->spec(); }
  Env& env(int i) { return *envs_.at(static_cast<std::size_t>(i)); }

  // Resets every copy; with a seed, copy i is seeded with seed + i. Returns [n * obs_dim].
  std::vector<double> reset(std::optional<std::uint64_t> seed = std::nullopt);
  // actions: [n * action_dim], row-major. Throws tom::Error before reset(), for a wrong
  // length, and naming the copy whose action is bad (NaN/inf); then no copy has moved.
  VecStep step(std::span<const double> actions);

 private:
  std::vector<std::unique_ptr<Env>> envs_;
  std::vector<std::uint8_t> needs_reset_;  // the copy's episode ended at the last step
  bool started_ = false;
};

}  // namespace tom::envs
