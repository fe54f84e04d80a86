#include "tom/envs/vec_env.hpp"

#include <algorithm>
#include <cmath>

#include "tom/core/error.hpp"

namespace tom::envs {

VecEnv::VecEnv(const std::string& name, int copies, const EnvOptions& options) {
  if (copies < 1) fail("a vector environment needs at least 1 copy (got {})", copies);
  for (int i = 0; i < copies; ++i) envs_.push_back(make_env(name, options));
  needs_reset_.assign(envs_.size(), 0);
}

std::vector<double> VecEnv::reset(std::optional<std::uint64_t> seed) {
  const auto obs_dim = static_cast<std::size_t>(spec().obs_dim);
  std::vector<double> obs(envs_.size() * obs_dim);
  for (std::size_t i = 0; i < envs_.size(); ++i) {
    const auto first = envs_[i]->reset(seed ? std::optional<std::uint64_t>(*seed + i) : std::nullopt);
    std::copy(first.begin(), first.end(), obs.begin() + static_cast<std::ptrdiff_t>(i * obs_dim));
  }
  std::fill(needs_reset_.begin(), needs_reset_.end(), 0);
  started_ = true;
  return obs;
}

VecStep VecEnv::step(std::span<const double> actions) {
  if (!started_) fail("step() before reset(): reset the vector environment first");
  const auto obs_dim = static_cast<std::size_t>(spec().obs_dim);
  const auto action_dim = static_cast<std::size_t>(spec().action_dim);
  if (actions.size() != envs_.size() * action_dim)
    fail("actions have {} entries; {} copies of {} take {} x {} = {}", actions.size(), envs_.size(), spec().name,
         envs_.size(), action_dim, envs_.size() * action_dim);
  // Every action is checked before any copy moves, so a bad one leaves all copies as they were.
  for (std::size_t i = 0; i < envs_.size(); ++i)
    for (std::size_t j = 0; j < action_dim; ++j)
      if (!std::isfinite(actions[i * action_dim + j]))
        fail("the action of copy {} has a non-finite entry {} ({})", i, j, actions[i * action_dim + j]);
  VecStep out;
  out.obs.resize(envs_.size() * obs_dim);
  out.reward.assign(envs_.size(), 0.0);
  out.terminated.assign(envs_.size(), 0);
  out.truncated.assign(envs_.size(), 0);
  for (std::size_t i = 0; i < envs_.size(); ++i) {
    std::vector<double> obs;
    if (needs_reset_[i]) {
      obs = envs_[i]->reset();
      needs_reset_[i] = 0;
    } else {
      Step step = envs_[i]->step(actions.subspan(i * action_dim, action_dim));
      obs = std::move(step.obs);
      out.reward[i] = step.reward;
      out.terminated[i] = step.terminated;
      out.truncated[i] = step.truncated;
      needs_reset_[i] = step.terminated || step.truncated;
    }
    std::copy(obs.begin(), obs.end(), out.obs.begin() + static_cast<std::ptrdiff_t>(i * obs_dim));
  }
  return out;
}

}  // namespace tom::envs
