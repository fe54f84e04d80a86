#include "tom/backbones/off_policy_core.hpp"

#include <torch/torch.h>

namespace tom::backbones {
namespace {

// The core's counters in a checkpoint, by name.
struct CoreCounters {
  std::int64_t env_steps = 0, updates = 0;
  template <class V>
  void visit(V& v) {
    v("env_steps", env_steps);
    v("sac_updates", updates);
  }
};

}  // namespace

OffPolicyCore::OffPolicyCore(std::int64_t replay_capacity, const agents::SacSettings& sac,
                             std::unique_ptr<envs::Env> env, std::uint64_t seed, torch::Device device,
                             TimeLimitEnds time_limit_ends)
    : collector_(std::move(env), seed, time_limit_ends),
      replay_(replay_capacity, collector_.env().spec().obs_dim, collector_.env().spec().action_dim, device),
      agent_(sac, collector_.env().spec().obs_dim, collector_.env().spec().action_dim,
             collector_.env().spec().action_low, collector_.env().spec().action_high, device, seed) {}

void OffPolicyCore::collect(bool explore_uniformly) {
  const auto action =
      explore_uniformly ? collector_.random_action() : agent_.act(collector_.obs(), /*deterministic=*/false);
  collector_.step(action, replay_);
  ++env_steps_;
}

void OffPolicyCore::update(const data::Batch& batch) {
  last_stats_ = agent_.update(batch);
  ++updates_;
}

void OffPolicyCore::report(Figures& out) const {
  out("train_return_last", collector_.last_episode_return());
  out("episodes", static_cast<double>(collector_.episodes()));
  out("q_loss", last_stats_.q_loss);
  out("policy_loss", last_stats_.policy_loss);
  out("alpha", agent_.alpha());
  out("alpha_loss", last_stats_.alpha_loss);
  out("entropy", last_stats_.entropy);
}

void OffPolicyCore::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive collector, replay, agent;
  collector_.save(collector);
  replay_.save(replay);
  agent_.save(agent);
  archive.write("collector", collector);
  archive.write("replay", replay);
  archive.write("agent", agent);
  save_fields(archive, "core_counters", CoreCounters{env_steps_, updates_});
  save_fields(archive, "last_stats", last_stats_);
}

void OffPolicyCore::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive collector, replay, agent;
  archive.read("collector", collector);
  archive.read("replay", replay);
  archive.read("agent", agent);
  collector_.load(collector);
  replay_.load(replay);
  agent_.load(agent);
  CoreCounters counters;
  load_fields(archive, "core_counters", counters, "trainer");
  env_steps_ = counters.env_steps;
  updates_ = counters.updates;
  load_fields(archive, "last_stats", last_stats_, "trainer");
}

}  // namespace tom::backbones
