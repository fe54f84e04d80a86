#pragma once
// TOM settings small enough for unit tests (a few dozen dual and discriminator steps on
// 16-unit networks), shared by the objective's tests and the model-learning stage's.
#include <cstdint>

#include "tom/objectives/make_objective.hpp"

namespace tom::test {

inline objectives::ObjectiveSettings small_tom(std::int64_t recent_pool) {
  objectives::ObjectiveSettings settings;
  settings.choice.name = "tom";
  settings.tom.recent_pool = recent_pool;
  settings.dual.steps = 30;
  settings.dual.batch = 32;
  settings.dual.hidden = 16;
  settings.discriminator.passes = 2;
  settings.discriminator.batch = 32;
  settings.discriminator.branch_hidden = 8;
  settings.discriminator.hidden = 16;
  return settings;
}

}  // namespace tom::test
