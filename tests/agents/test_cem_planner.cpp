// The CEM planner on dynamics known in closed form: it finds the best first action, keeps
// particles from scoring rewards after they terminated, warm-starts from its last plan,
// continues exactly after save/load, and names bad settings.
#include <gtest/gtest.h>

#include "../support.hpp"

#include "tom/agents/cem_planner.hpp"
#include "tom/core/archive.hpp"
#include "tom/core/threads.hpp"

namespace tom::agents {
namespace {

CemSettings small() {
  CemSettings s;
  s.horizon = 6;
  s.population = 200;
  s.elites = 20;
  s.iterations = 5;
  s.particles = 4;
  return s;
}

// A point on a line moved by its action (bounds +-1), rewarded for being near x = 3;
// `noise` adds a random step to each particle, different per block when asked.
ParticleStep point_to(double target) {
  return [target](const torch::Tensor& obs, const torch::Tensor& action) {
    const auto next = obs + action;
    return ParticleStepResult{next, -(next.select(1, 0) - target).square(), torch::zeros({obs.size(0)}, torch::kBool)};
  };
}

TEST(CemPlanner, FindsTheBestFirstActionOfKnownDynamics) {
  tom::set_threads(1);
  CemPlanner planner(small(), {-1.0}, {1.0}, 3);
  EXPECT_GT(planner.act(std::vector<double>{0.0}, point_to(3.0))[0], 0.8);  // go right, at full speed
  planner.reset();  // a new episode: no warm start from a plan that pressed against the bound
  EXPECT_LT(planner.act(std::vector<double>{0.0}, point_to(-3.0))[0], -0.8);  // the other way
  planner.reset();
  const auto stay = planner.act(std::vector<double>{3.0}, point_to(3.0))[0];
  EXPECT_LT(std::abs(stay), 0.3);  // at the target: stay
  EXPECT_GT(planner.last_best_return(), -1.0);
  EXPECT_LE(planner.last_elite_return(), planner.last_best_return());
}

TEST(CemPlanner, RewardsEndWhenAParticleTerminates) {
  tom::set_threads(1);
  // +1 per step alive, and a step past x = 0.5 ends the particle with a bonus of 2. The best
  // of 6 steps stays 5 and steps past on the last (8); had rewards counted after the end,
  // stepping past at once would score 3 per step (18).
  const ParticleStep survive = [](const torch::Tensor& obs, const torch::Tensor& action) {
    const auto next = obs + action;
    const auto ended = next.select(1, 0) > 0.5;
    return ParticleStepResult{next, 1.0 + 2.0 * ended.to(torch::kFloat32), ended};
  };
  CemPlanner planner(small(), {-1.0}, {1.0}, 4);
  EXPECT_LT(planner.act(std::vector<double>{0.0}, survive)[0], 0.5);
  EXPECT_NEAR(planner.last_best_return(), 8.0, 1e-5);
}

TEST(CemPlanner, ContinuesExactlyAfterSaveAndLoad) {
  tom::set_threads(1);
  CemPlanner planner(small(), {-1.0, -2.0}, {1.0, 2.0}, 5);
  const ParticleStep step = [](const torch::Tensor& obs, const torch::Tensor& action) {
    const auto next = obs + action.sum(1, true);
    return ParticleStepResult{next, -(next.select(1, 0) - 2).square(), torch::zeros({obs.size(0)}, torch::kBool)};
  };
  planner.act(std::vector<double>{0.0}, step);
  torch::serialize::OutputArchive saved;
  planner.save(saved);
  auto archive = reread(saved);
  const auto next = planner.act(std::vector<double>{0.5}, step);
  CemPlanner resumed(small(), {-1.0, -2.0}, {1.0, 2.0}, 99);
  resumed.load(archive);
  EXPECT_EQ(resumed.act(std::vector<double>{0.5}, step), next);
}

TEST(CemPlanner, NamesBadSettingsAndSteps) {
  CemSettings too_many = small();
  too_many.elites = 300;
  EXPECT_NE(test::error_of([&] { CemPlanner(too_many, {-1.0}, {1.0}); }).find("cem.elites"), std::string::npos);
  EXPECT_NE(test::error_of([&] { CemPlanner(small(), {1.0}, {-1.0}); }).find("low < high"), std::string::npos);
  CemPlanner planner(small(), {-1.0}, {1.0});
  EXPECT_NE(test::error_of([&] { planner.act(std::vector<double>{0.0}, point_to(1.0), 3); }).find("multiple"),
            std::string::npos);  // 4 particles cannot be shared by 3 predictors
  const ParticleStep wrong = [](const torch::Tensor& obs, const torch::Tensor&) {
    return ParticleStepResult{obs, torch::zeros({1}), torch::zeros({1}, torch::kBool)};
  };
  EXPECT_NE(test::error_of([&] { planner.act(std::vector<double>{0.0}, wrong); }).find("planning step must return"),
            std::string::npos);
}

}  // namespace
}  // namespace tom::agents
