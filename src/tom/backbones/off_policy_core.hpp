#pragma once
// What every off-policy backbone holds and does the same way: the real environment's
// collector, the replay buffer of real transitions and the SAC agent; acting (uniformly
// random actions while exploring, else a sample of the policy), updating the agent on a
// batch, the common metrics, and saving and loading these parts.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <torch/serialize/archive.h>

#include "tom/agents/sac.hpp"
#include "tom/backbones/collector.hpp"
#include "tom/core/figures.hpp"
#include "tom/data/replay_buffer.hpp"
#include "tom/envs/env.hpp"

namespace tom::backbones {

class OffPolicyCore {
 public:
  OffPolicyCore(std::int64_t replay_capacity, const agents::SacSettings& sac, std::unique_ptr<envs::Env> env,
                std::uint64_t seed, torch::Device device, TimeLimitEnds time_limit_ends = TimeLimitEnds::bootstrap);

  // One env step into the replay buffer: a uniformly random action if `explore_uniformly`,
  // else an action sampled from the policy.
  void collect(bool explore_uniformly);
  // One SAC update on `batch`; its losses become the reported ones.
  void update(const data::Batch& batch);

  std::int64_t env_steps() const { return env_steps_; }
  std::int64_t updates() const { return updates_; }
  std::vector<double> act_deterministic(std::span<const double> obs) { return agent_.act(obs, true); }
  const data::ReplayBuffer& replay() const { return replay_; }
  agents::Sac& agent() { return agent_; }
  const agents::Sac& agent() const { return agent_; }

  // train_return_last, episodes and the last update's SAC figures (alpha: the current one).
  void report(Figures& out) const;

  // Under the keys "collector", "replay" and "agent" (what tom eval reads), plus counters.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  Collector collector_;
  data::ReplayBuffer replay_;
  agents::Sac agent_;
  std::int64_t env_steps_ = 0;
  std::int64_t updates_ = 0;
  agents::SacStats last_stats_;
};

}  // namespace tom::backbones
