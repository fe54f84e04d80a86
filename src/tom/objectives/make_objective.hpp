#pragma once
// Choosing a model-learning objective by name, with every objective's settings (the run
// config's sections objective, tom, tom_dual, discriminator, pmac, vagram).
#include <memory>
#include <string>
#include <vector>

#include "tom/objectives/model_objective.hpp"
#include "tom/objectives/pmac_objective.hpp"
#include "tom/objectives/tom_objective.hpp"
#include "tom/objectives/vagram_objective.hpp"

namespace tom::objectives {

struct ObjectiveChoice {
  std::string name = "mle";

  template <class V>
  void visit(V& v) {
    v("name", name, "model-learning objective: mle (plain MBPO), tom, pmac or vagram",
      OneOf{"mle", "tom", "pmac", "vagram"});
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
