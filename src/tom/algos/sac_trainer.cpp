#include "tom/algos/sac_trainer.hpp"

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"

namespace tom::algos {

SacTrainer::SacTrainer(const SacLoopSettings& loop, const agents::SacSettings& sac, std::unique_ptr<envs::Env> env,
                       std::uint64_t seed, torch::Device device)
    : loop_(loop),
      collector_(std::move(env), seed),
      replay_(loop.replay_capacity, collector_.env().spec().obs_dim, collector_.env().spec().action_dim, device),
      agent_(sac, collector_.env().spec().obs_dim, collector_.env().spec().action_dim,
             collector_.env().spec().action_low, collector_.env().spec().action_high, device, seed),
      sample_gen_(at::detail::createCPUGenerator(seed + 1)) {}

void SacTrainer::step() {
  const auto action = env_steps_ < loop_.random_steps ? collector_.random_action()
                                                      : agent_.act(collector_.obs(), /*deterministic=*/false);
  collector_.step(action, replay_);
  ++env_steps_;
  if (env_steps_ < loop_.update_after) return;
  for (int i = 0; i < loop_.updates_per_step; ++i) {
    last_stats_ = agent_.update(replay_.sample(agent_.settings().batch_size, sample_gen_));
    ++updates_;
  }
}

std::vector<double> SacTrainer::act_deterministic(std::span<const double> obs) {
  return agent_.act(obs, /*deterministic=*/true);
}

std::vector<std::string> SacTrainer::metric_names() const {
  return {"train_return_last", "episodes", "q_loss", "policy_loss", "alpha", "alpha_loss", "entropy", "sac_updates"};
}

std::vector<double> SacTrainer::metric_values() const {
  return {collector_.last_episode_return(), static_cast<double>(collector_.episodes()), last_stats_.q_loss,
          last_stats_.policy_loss, agent_.alpha(), last_stats_.alpha_loss, last_stats_.entropy,
          static_cast<double>(updates_)};
}

void SacTrainer::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive collector, replay, agent;
  collector_.save(collector);
  replay_.save(replay);
  agent_.save(agent);
  archive.write("collector", collector);
  archive.write("replay", replay);
  archive.write("agent", agent);
  archive.write("sample_gen", sample_gen_.get_state());
  write_int(archive, "env_steps", env_steps_);
  write_int(archive, "updates", updates_);
  agents::write_stats(archive, "last_stats", last_stats_);
}

void SacTrainer::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive collector, replay, agent;
  archive.read("collector", collector);
  archive.read("replay", replay);
  archive.read("agent", agent);
  collector_.load(collector);
  replay_.load(replay);
  agent_.load(agent);
  sample_gen_.set_state(read_tensor(archive, "sample_gen", "trainer"));
  env_steps_ = read_int(archive, "env_steps", "trainer");
  updates_ = read_int(archive, "updates", "trainer");
  last_stats_ = agents::read_stats(archive, "last_stats", "trainer");
}

}  // namespace tom::algos
