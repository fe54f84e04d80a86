#pragma once
// A backbone loop (SAC, MBPO, ...) advanced one environment step at a time, so that the
// run manager can evaluate, log, checkpoint and stop between any two steps.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>

#include "tom/core/figures.hpp"

namespace tom::model_learning {
class Stage;
}

namespace tom::backbones {

class Trainer {
 public:
  virtual ~Trainer() = default;
  // One environment step and all the learning it triggers.
  virtual void step() = 0;
  virtual std::int64_t env_steps() const = 0;
  // The deterministic policy, for evaluation: one observation in, one action out.
  virtual std::vector<double> act_deterministic(std::span<const double> obs) = 0;
  // The trainer's metrics, named (the same names, in the same order, at every call):
  // latest losses, temperature, model errors, work counters, seconds per phase...
  virtual void report(Figures& out) const = 0;
  // The model-learning stage of a model-based backbone (its weight log becomes
  // weights.csv); null for a model-free one.
  virtual model_learning::Stage* model_learning() { return nullptr; }
  // All state needed to continue exactly: networks, optimisers, buffers, generators,
  // the environment mid-episode, counters.
  virtual void save(torch::serialize::OutputArchive& archive) const = 0;
  virtual void load(torch::serialize::InputArchive& archive) = 0;
};

}  // namespace tom::backbones
