#pragma once
// The model-learning objectives by name: what each is, what it needs from a backbone, and
// how it is made from its settings (the run config's sections objective, tom, tom_dual,
// discriminator, pmac, vagram). Adding an objective: its own files, its settings section
// below, and one line in the registry (make_objective.cpp).
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tom/objectives/model_objective.hpp"
#include "tom/objectives/pmac_objective.hpp"
#include "tom/objectives/tom_objective.hpp"
#include "tom/objectives/vagram_objective.hpp"

namespace tom::objectives {

// Which views of agents/policy_value.hpp an objective needs, or a backbone offers.
struct Views {
  bool policy = false;     // agents::ActionSampler
  bool value = false;      // agents::ValueFunction
  bool snapshots = false;  // agents::PolicySnapshots
};

struct ObjectiveSettings;

struct ObjectiveEntry {
  std::string_view name;
  std::string_view summary;
  Views needs;
  std::unique_ptr<ModelObjective> (*make)(const ObjectiveSettings& settings, int obs_dim, int action_dim,
                                          torch::Device device);
};

std::span<const ObjectiveEntry> objective_registry();
std::vector<std::string> objective_names();
// The entry of `name`; a tom::Error naming the valid ones if there is none.
const ObjectiveEntry& objective_entry(const std::string& name);
// Empty when `offers` covers what objective `name` needs; else one line naming the first
// missing view: "vagram needs a value function; the pets backbone has none".
std::string missing_view(const std::string& name, const Views& offers, const std::string& backbone);

struct ObjectiveChoice {
  std::string name = "mle";

  template <class V>
  void visit(V& v) {
    v("name", name, "model-learning objective: mle (plain MBPO), tom, pmac or vagram", OneOf{objective_names()});
  }
};

struct ObjectiveSettings {
  ObjectiveChoice choice;
  TomSettings tom;
  TomDualSettings dual;
  DiscriminatorSettings discriminator;
  PmacSettings pmac;
  VagramSettings vagram;
};

// Uniform weights and the likelihood loss: plain maximum likelihood.
class MleObjective final : public ModelObjective {
 public:
  std::string name() const override { return "mle"; }
  FitPlan plan(const FitContext& context) override { return {replay_transitions(context.replay)}; }
};

std::unique_ptr<ModelObjective> make_objective(const ObjectiveSettings& settings, int obs_dim, int action_dim,
                                               torch::Device device);

}  // namespace tom::objectives
