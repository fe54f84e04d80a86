#include "tom/objectives/make_objective.hpp"

#include "tom/core/error.hpp"
#include "tom/core/registry.hpp"

namespace tom::objectives {
namespace {

using Made = std::unique_ptr<ModelObjective>;

// One entry per objective: name, summary, the views it needs, how it is made.
constexpr ObjectiveEntry kRegistry[] = {
    {"mle", "maximum likelihood on every replay transition (plain MBPO)", {},
     [](const ObjectiveSettings&, int, int, torch::Device) -> Made { return std::make_unique<MleObjective>(); }},
    {"tom", "transition occupancy matching: likelihood weighted by d^pi/d^R from a DICE dual", {.policy = true},
     [](const ObjectiveSettings& s, int obs_dim, int action_dim, torch::Device device) -> Made {
       return std::make_unique<TomObjective>(s.tom, s.dual, s.discriminator, obs_dim, action_dim, device);
     }},
    {"pmac", "policy-adapted recency weighting of the replay", {.snapshots = true},
     [](const ObjectiveSettings& s, int, int, torch::Device) -> Made { return std::make_unique<PmacObjective>(s.pmac); }},
    {"vagram", "value-gradient weighted model loss", {.value = true},
     [](const ObjectiveSettings& s, int, int, torch::Device) -> Made {
       return std::make_unique<VagramObjective>(s.vagram);
     }},
};

}  // namespace

std::span<const ObjectiveEntry> objective_registry() { return kRegistry; }

std::vector<std::string> objective_names() { return entry_names<ObjectiveEntry>(kRegistry); }

const ObjectiveEntry& objective_entry(const std::string& name) { return entry_named<ObjectiveEntry>(kRegistry, name, "model objective"); }

std::string missing_view(const std::string& name, const Views& offers, const std::string& backbone) {
  const Views needs = objective_entry(name).needs;
  const char* missing = needs.policy && !offers.policy         ? "a policy to sample actions from"
                        : needs.value && !offers.value         ? "a value function"
                        : needs.snapshots && !offers.snapshots ? "snapshots of its policy"
                                                               : nullptr;
  if (missing == nullptr) return {};
  return fmt::format("{} needs {}; the {} backbone has none", name, missing, backbone);
}

std::unique_ptr<ModelObjective> make_objective(const ObjectiveSettings& settings, int obs_dim, int action_dim,
                                               torch::Device device) {
  return objective_entry(settings.choice.name).make(settings, obs_dim, action_dim, device);
}

}  // namespace tom::objectives
