#pragma once
// Model-free SAC, top to bottom: act (uniformly at random for the first random_steps),
// store the transition, then updates_per_step SAC updates on uniform replay batches.
#include <cstdint>
#include <memory>

#include "tom/agents/sac.hpp"
#include "tom/backbones/off_policy_core.hpp"
#include "tom/backbones/trainer.hpp"
#include "tom/core/settings.hpp"

namespace tom::backbones {

struct SacLoopSettings {
  std::int64_t random_steps = 5000;  // uniform random actions before the policy acts
  std::int64_t update_after = 5000;  // env steps before the first update
  int updates_per_step = 1;
  std::int64_t replay_capacity = 1000000;

  template <class V>
  void visit(V& v) {
    v("random_steps", random_steps, "env steps of uniform random actions at the start", Range::at_least(0));
    v("update_after", update_after, "env steps collected before the first SAC update", Range::at_least(1));
    v("updates_per_step", updates_per_step, "SAC updates per env step", Range::at_least(1));
    v("replay_capacity", replay_capacity, "transitions kept in the replay buffer", Range::at_least(1));
  }
};

class SacTrainer final : public Trainer {
 public:
  SacTrainer(const SacLoopSettings& loop, const agents::SacSettings& sac, std::unique_ptr<envs::Env> env,
             std::uint64_t seed, torch::Device device);

  void step() override;
  std::int64_t env_steps() const override { return core_.env_steps(); }
  std::vector<double> act_deterministic(std::span<const double> obs) override {
    return core_.act_deterministic(obs);
  }
  void report(Figures& out) const override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  SacLoopSettings loop_;
  OffPolicyCore core_;
  torch::Generator sample_gen_;  // replay sampling
};

}  // namespace tom::backbones
