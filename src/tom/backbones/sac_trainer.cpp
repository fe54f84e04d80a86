#include "tom/backbones/sac_trainer.hpp"

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"

namespace tom::backbones {

SacTrainer::SacTrainer(const SacLoopSettings& loop, const agents::SacSettings& sac, std::unique_ptr<envs::Env> env,
                       std::uint64_t seed, torch::Device device)
    : loop_(loop),
      core_(loop.replay_capacity, sac, std::move(env), seed, device),
      sample_gen_(at::detail::createCPUGenerator(seed + 1)) {}

void SacTrainer::step() {
  core_.collect(/*explore_uniformly=*/core_.env_steps() < loop_.random_steps);
  if (core_.env_steps() < loop_.update_after) return;
  for (int i = 0; i < loop_.updates_per_step; ++i)
    core_.update(core_.replay().sample(core_.agent().settings().batch_size, sample_gen_));
}

void SacTrainer::report(Figures& out) const {
  core_.report(out);
  out("sac_updates", static_cast<double>(core_.updates()));
}

void SacTrainer::save(torch::serialize::OutputArchive& archive) const {
  core_.save(archive);
  archive.write("sample_gen", sample_gen_.get_state());
}

void SacTrainer::load(torch::serialize::InputArchive& archive) {
  core_.load(archive);
  sample_gen_.set_state(read_tensor(archive, "sample_gen", "trainer"));
}

}  // namespace tom::backbones
