#pragma once
// The backbones by name (run.algo), as objectives/make_objective.hpp lists the model-
// learning objectives: what each is, whether it learns a dynamics model, which views of
// its agent it offers the objectives (agents/policy_value.hpp), and how it is built from
// a run's config. The run manager knows backbones only through this table.
//
// Adding a backbone: its trainer (an backbones::Trainer; a model-based one drives a
// model_learning::Stage), its settings section in Config, and one entry in backbone_registry.cpp.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

#include "tom/backbones/trainer.hpp"
#include "tom/envs/env.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::runs {

struct Config;

struct BackboneEntry {
  std::string_view name;
  std::string_view summary;
  bool learns_model;
  bool agent_acts;  // its checkpoint's SAC agent ("agent") acts alone, without the buffers
  objectives::Views offers;      // what its model-learning objectives may use
  std::string_view family;       // the setting family a run without --family gets ("" for none)
  std::unique_ptr<backbones::Trainer> (*make)(const Config& config, std::unique_ptr<envs::Env> env, std::uint64_t seed,
                                          torch::Device device);
  // The env steps before the backbone learns anything, and the setting that says so.
  std::int64_t (*learning_starts)(const Config& config);
  std::string_view learning_starts_setting;
};

std::span<const BackboneEntry> backbone_registry();
std::vector<std::string> backbone_names();
// The entry of `name`; a tom::Error naming the valid ones if there is none.
const BackboneEntry& backbone_entry(const std::string& name);

}  // namespace tom::runs
