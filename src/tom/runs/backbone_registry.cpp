#include "tom/runs/backbone_registry.hpp"

#include "tom/backbones/mbpo_trainer.hpp"
#include "tom/backbones/pets_trainer.hpp"
#include "tom/backbones/sac_trainer.hpp"
#include "tom/core/error.hpp"
#include "tom/core/registry.hpp"
#include "tom/envs/registry.hpp"
#include "tom/models/make_model.hpp"
#include "tom/runs/config.hpp"

namespace tom::runs {
namespace {

using Made = std::unique_ptr<backbones::Trainer>;

Made make_sac(const Config& config, std::unique_ptr<envs::Env> env, std::uint64_t seed, torch::Device device) {
  return std::make_unique<backbones::SacTrainer>(config.sac_loop, config.sac, std::move(env), seed, device);
}

Made make_mbpo(const Config& config, std::unique_ptr<envs::Env> env, std::uint64_t seed, torch::Device device) {
  const auto& spec = env->spec();
  // In this order: both may draw initial weights from the global generator.
  auto model = models::make_model(config.mbpo.model, config.ensemble, config.mdn, spec.obs_dim, spec.action_dim, seed,
                                  device);
  auto objective = objectives::make_objective(config.objective, spec.obs_dim, spec.action_dim, device);
  auto learning = std::make_unique<model_learning::Stage>(std::move(model), std::move(objective),
                                                          model_learning::fit_data_from_name(config.mbpo.fit_data));
  return std::make_unique<backbones::MbpoTrainer>(config.mbpo, config.sac, std::move(learning), std::move(env),
                                              envs::termination_fn(config.run.env), seed, device);
}

Made make_pets(const Config& config, std::unique_ptr<envs::Env> env, std::uint64_t seed, torch::Device device) {
  const auto& spec = env->spec();
  auto model = models::make_model(config.pets.model, config.ensemble, config.mdn, spec.obs_dim, spec.action_dim, seed,
                                  device);
  auto objective = objectives::make_objective(config.objective, spec.obs_dim, spec.action_dim, device);
  auto learning = std::make_unique<model_learning::Stage>(std::move(model), std::move(objective),
                                                          model_learning::fit_data_from_name(config.pets.fit_data));
  return std::make_unique<backbones::PetsTrainer>(config.pets, config.cem, config.distill, std::move(learning), std::move(env),
                                              envs::termination_fn(config.run.env), seed, device);
}

constexpr objectives::Views kEveryView{.policy = true, .value = true, .snapshots = true};

constexpr BackboneEntry kRegistry[] = {
    {"sac", "model-free soft actor-critic", false, true, {}, "", make_sac,
     [](const Config& config) { return config.sac_loop.update_after; }, "sac_loop.update_after"},
    {"mbpo", "model-based policy optimisation: SAC on model rollouts", true, true, kEveryView, "mbpo-paper", make_mbpo,
     [](const Config& config) { return config.mbpo.random_steps; }, "mbpo.random_steps"},
    // PETS has no actor or critic; its policy view is a policy distilled from the planner.
    {"pets", "probabilistic ensemble and trajectory sampling: model-predictive control by CEM", true, false,
     {.policy = true, .snapshots = true}, "",
     make_pets, [](const Config& config) { return config.pets.random_steps; }, "pets.random_steps"},
};

}  // namespace

std::span<const BackboneEntry> backbone_registry() { return kRegistry; }

std::vector<std::string> backbone_names() { return entry_names<BackboneEntry>(kRegistry); }

const BackboneEntry& backbone_entry(const std::string& name) { return entry_named<BackboneEntry>(kRegistry, name, "backbone"); }

}  // namespace tom::runs
