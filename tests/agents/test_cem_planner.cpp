// The CEM planner on dynamics known in closed form: it finds the best first action, keeps
// particles from scoring rewards after they terminated, warm-starts from its last plan,
// continues exactly after save/load, and names bad settings; the same for iCEM, whose
// coloured noise and shrinking population are checked on their own.
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
  return [target](const torch::Tensor& obs, const torch::Tensor& action, torch::Generator&) {
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
  const ParticleStep survive = [](const torch::Tensor& obs, const torch::Tensor& action, torch::Generator&) {
    const auto next = obs + action;
    const auto ended = next.select(1, 0) > 0.5;
    return ParticleStepResult{next, 1.0 + 2.0 * ended.to(torch::kFloat32), ended};
  };
  CemPlanner planner(small(), {-1.0}, {1.0}, 4);
  EXPECT_LT(planner.act(std::vector<double>{0.0}, survive)[0], 0.5);
  EXPECT_NEAR(planner.last_best_return(), 8.0, 1e-5);
}

// Plans once with `settings`, checkpoints, plans again; a planner of another seed that loads
// the checkpoint makes the same second plan. Returns the checkpoint for further checks.
torch::serialize::OutputArchive expect_continues_exactly(const CemSettings& settings) {
  tom::set_threads(1);
  CemPlanner planner(settings, {-1.0, -2.0}, {1.0, 2.0}, 5);
  const ParticleStep step = [](const torch::Tensor& obs, const torch::Tensor& action, torch::Generator&) {
    const auto next = obs + action.sum(1, true);
    return ParticleStepResult{next, -(next.select(1, 0) - 2).square(), torch::zeros({obs.size(0)}, torch::kBool)};
  };
  planner.act(std::vector<double>{0.0}, step);
  torch::serialize::OutputArchive saved;
  planner.save(saved);
  auto archive = reread(saved);
  const auto next = planner.act(std::vector<double>{0.5}, step);
  CemPlanner resumed(settings, {-1.0, -2.0}, {1.0, 2.0}, 99);
  resumed.load(archive);
  EXPECT_EQ(resumed.act(std::vector<double>{0.5}, step), next);
  return saved;
}

TEST(CemPlanner, ContinuesExactlyAfterSaveAndLoad) { expect_continues_exactly(small()); }

TEST(CemPlanner, TwoThreadsPlanWhatOneThreadPlans) {
  // Noisy particles: each step adds noise drawn from the half-population's generator.
  const ParticleStep noisy = [](const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) {
    const auto next = obs + action + 0.3 * torch::randn(obs.sizes(), gen, torch::kFloat32);
    return ParticleStepResult{next, -(next.select(1, 0) - 2).square(), torch::zeros({obs.size(0)}, torch::kBool)};
  };
  for (const auto* method : {"cem", "icem"}) {
    CemSettings settings = small();
    settings.method = method;
    std::vector<std::vector<double>> actions[2];
    for (const int threads : {1, 2}) {
      tom::set_threads(threads);
      CemPlanner planner(settings, {-1.0}, {1.0}, 6);
      for (const double x : {0.0, 0.4, 0.9}) actions[threads - 1].push_back(planner.act(std::vector<double>{x}, noisy));
    }
    tom::set_threads(1);
    EXPECT_EQ(actions[0], actions[1]) << method;
  }
}

TEST(CemPlanner, NamesBadSettingsAndSteps) {
  CemSettings too_many = small();
  too_many.elites = 300;
  EXPECT_NE(test::error_of([&] { CemPlanner(too_many, {-1.0}, {1.0}); }).find("cem.elites"), std::string::npos);
  EXPECT_NE(test::error_of([&] { CemPlanner(small(), {1.0}, {-1.0}); }).find("low < high"), std::string::npos);
  CemPlanner planner(small(), {-1.0}, {1.0});
  EXPECT_NE(test::error_of([&] { planner.act(std::vector<double>{0.0}, point_to(1.0), 3); }).find("multiple"),
            std::string::npos);  // 4 particles cannot be shared by 3 predictors
  const ParticleStep wrong = [](const torch::Tensor& obs, const torch::Tensor&, torch::Generator&) {
    return ParticleStepResult{obs, torch::zeros({1}), torch::zeros({1}, torch::kBool)};
  };
  EXPECT_NE(test::error_of([&] { planner.act(std::vector<double>{0.0}, wrong); }).find("planning step must return"),
            std::string::npos);
}

CemSettings small_icem() {
  CemSettings s = small();
  s.method = "icem";
  s.population_decay = 2.0;
  s.keep_elites = 0.25;
  return s;
}

TEST(Icem, FindsTheBestFirstActionOfKnownDynamics) {
  tom::set_threads(1);
  CemPlanner planner(small_icem(), {-1.0}, {1.0}, 3);
  EXPECT_GT(planner.act(std::vector<double>{0.0}, point_to(3.0))[0], 0.8);
  planner.reset();
  EXPECT_LT(planner.act(std::vector<double>{0.0}, point_to(-3.0))[0], -0.8);
  planner.reset();
  EXPECT_LT(std::abs(planner.act(std::vector<double>{3.0}, point_to(3.0))[0]), 0.3);
}

TEST(Icem, PopulationShrinksAndKeptElitesAreScoredAgain) {
  tom::set_threads(1);
  // population 200, decay 2, 20 elites, a quarter kept (5), 4 particles: iterations score
  // 200, 100 + 5, 50 + 5, 40 + 5 (never below twice the elites), 40 + 5 sequences; the next
  // env step starts with 200 + 5 (the kept elites one step on).
  CemPlanner planner(small_icem(), {-1.0}, {1.0}, 8);
  std::vector<std::int64_t> sequences;
  const auto record = [&] {  // each step call's sequence count (rows / 4 particles)
    sequences.clear();
    const ParticleStep counting = [&sequences](const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) {
      sequences.push_back(obs.size(0) / 4);
      return point_to(3.0)(obs, action, gen);
    };
    return counting;
  };
  // With 1 thread the two halves of the population run one after the other, each for the
  // 6 steps of the horizon: an iteration's sequences are entries 12 i and 12 i + 6.
  const auto scored = [&](std::size_t iteration) { return sequences[12 * iteration] + sequences[12 * iteration + 6]; };
  planner.act(std::vector<double>{0.0}, record());
  ASSERT_EQ(sequences.size(), 5u * 12u);
  std::vector<std::int64_t> per_iteration;
  for (std::size_t i = 0; i < 5; ++i) per_iteration.push_back(scored(i));
  EXPECT_EQ(per_iteration, (std::vector<std::int64_t>{200, 105, 55, 45, 45}));
  planner.act(std::vector<double>{0.5}, record());
  EXPECT_EQ(scored(0), 205);
  planner.reset();  // a new episode keeps nothing
  planner.act(std::vector<double>{0.0}, record());
  EXPECT_EQ(scored(0), 200);
}

TEST(Icem, ColouredNoiseHasUnitVarianceAndItsExponentsCorrelation) {
  auto gen = at::detail::createCPUGenerator(11);
  const auto lag1 = [](const torch::Tensor& x) {  // [n, H, 1]: correlation of neighbouring steps
    const auto a = x.narrow(1, 0, x.size(1) - 1).flatten(), b = x.narrow(1, 1, x.size(1) - 1).flatten();
    return ((a * b).mean() / (a.std() * b.std())).item<double>();
  };
  for (const std::int64_t horizon : {15, 30}) {
    const auto white = coloured_noise(20000, horizon, 1, 0.0, gen);
    const auto pink = coloured_noise(20000, horizon, 1, 1.0, gen);
    const auto brown = coloured_noise(20000, horizon, 1, 2.0, gen);
    for (const auto& x : {white, pink, brown}) {
      EXPECT_EQ(x.sizes(), (std::vector<std::int64_t>{20000, horizon, 1}));
      EXPECT_NEAR(x.var().item<double>(), 1.0, 0.05) << "horizon " << horizon;
    }
    EXPECT_LT(std::abs(lag1(white)), 0.03);
    EXPECT_GT(lag1(pink), lag1(white) + 0.1);
    // Neighbours move together (less than a random walk: the FFT noise is periodic).
    EXPECT_GT(lag1(brown), 0.7);
    EXPECT_GT(lag1(brown), lag1(pink) + 0.1);
  }
}

TEST(Icem, ContinuesExactlyAfterSaveAndLoad) {
  torch::serialize::OutputArchive saved = expect_continues_exactly(small_icem());
  // A checkpoint's kept elites of another horizon are refused by name.
  CemSettings longer = small_icem();
  longer.horizon = 7;
  CemPlanner other(longer, {-1.0, -2.0}, {1.0, 2.0});
  auto again = reread(saved);
  EXPECT_NE(test::error_of([&] { other.load(again); }).find("plan has shape"), std::string::npos);
}

TEST(Icem, NamesBadSettings) {
  CemSettings bad = small_icem();
  bad.population_decay = 0.5;
  EXPECT_NE(test::error_of([&] { CemPlanner(bad, {-1.0}, {1.0}); }).find("cem.population_decay"), std::string::npos);
  bad = small_icem();
  bad.method = "mppi";
  EXPECT_NE(test::error_of([&] { CemPlanner(bad, {-1.0}, {1.0}); }).find("cem.method"), std::string::npos);
}

}  // namespace
}  // namespace tom::agents
