#include "tom/objectives/make_objective.hpp"

#include "tom/core/error.hpp"

namespace tom::objectives {

std::unique_ptr<ModelObjective> make_objective(const ObjectiveSettings& settings, int obs_dim, int action_dim,
                                               torch::Device device) {
  const std::string& name = settings.choice.name;
  if (name == "mle") return std::make_unique<MleObjective>();
  if (name == "tom")
    return std::make_unique<TomObjective>(settings.tom, settings.dual, settings.discriminator, obs_dim, action_dim,
                                          device);
  if (name == "pmac") return std::make_unique<PmacObjective>(settings.pmac);
  if (name == "vagram") return std::make_unique<VagramObjective>(settings.vagram);
  fail("unknown model objective '{}' (valid: mle, tom, pmac, vagram)", name);
}

}  // namespace tom::objectives
