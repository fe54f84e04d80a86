// The model-learning stage on its own, as a C++ user drives it: their transitions, their
// policy (only the view TOM needs), any objective; what a fit gives back, what it logs,
// what it refuses, and an exact continuation after save/load.
#include <cmath>

#include <gtest/gtest.h>

#include "../objectives/small_tom.hpp"
#include "../support.hpp"

#include "tom/core/archive.hpp"
#include "tom/core/threads.hpp"
#include "tom/model_learning/stage.hpp"
#include "tom/models/make_model.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::model_learning {
namespace {

constexpr int kObs = 3, kAct = 1;

// A user's policy: a ~ tanh(-s_0 + 0.3 noise). It offers only what TOM's dual needs.
class LinearPolicy final : public agents::ActionSampler {
 public:
  int obs_dim() const override { return kObs; }
  int action_dim() const override { return kAct; }
  agents::ActionSample sample_actions(const torch::Tensor& obs, torch::Generator& gen) const override {
    const auto noise = 0.3 * torch::randn({obs.size(0), kAct}, gen);
    return {torch::tanh(-obs.narrow(1, 0, 1) + noise.to(obs.dtype())), torch::zeros({obs.size(0)})};
  }
};

// s' = 0.9 s + 0.2 a (on every coordinate), reward -|s|^2: 4 episodes of 60 steps, the first
// three with uniform random actions, the last with the policy.
data::ReplayBuffer user_transitions() {
  data::ReplayBuffer replay(1000, kObs, kAct);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const LinearPolicy policy;
  for (int episode = 0; episode < 4; ++episode) {
    auto s = torch::randn({1, kObs}, gen, torch::kFloat64);
    for (int t = 0; t < 60; ++t) {
      const auto a = episode < 3 ? (torch::rand({1, kAct}, gen, torch::kFloat64) * 2 - 1)
                                 : policy.sample_actions(s, gen).action;
      const auto next = (0.9 * s + 0.2 * a).contiguous();
      const double reward = -s.square().sum().item<double>();
      const auto s_row = s.contiguous(), a_row = a.contiguous();
      replay.add({s_row.data_ptr<double>(), kObs}, {a_row.data_ptr<double>(), kAct}, reward,
                 {next.data_ptr<double>(), kObs}, false, t == 0);
      s = next;
    }
  }
  return replay;
}

std::unique_ptr<models::DynamicsModel> small_model() {
  models::EnsembleSettings ensemble;
  ensemble.members = 3;
  ensemble.elites = 2;
  ensemble.hidden_layers = 2;
  ensemble.hidden_units = 16;
  ensemble.fit.max_epochs = 5;
  return models::make_model("ensemble", ensemble, {}, kObs, kAct, /*seed=*/1, torch::kCPU);
}

objectives::ObjectiveSettings small_tom() { return test::small_tom(/*recent_pool=*/60); }

TEST(ModelLearningStage, FitsTomOnAUsersTransitionsWithTheirPolicy) {
  tom::set_threads(1);
  const auto replay = user_transitions();
  const LinearPolicy policy;
  Stage stage(small_model(), objectives::make_objective(small_tom(), kObs, kAct, torch::kCPU));
  const data::Batch all = replay.all();
  const double untrained_mse = models::prediction_mse(stage.model(), all.obs, all.action, all.reward, all.next_obs);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const Fitted fitted = stage.fit({replay, {.policy = &policy}, 240, 0, gen});

  // The starts' weights: one per replay slot, mean 1, not uniform (TOM weighed them).
  ASSERT_FALSE(fitted.start_weights.uniform());
  const auto w = fitted.start_weights.values();
  ASSERT_EQ(w.size(0), replay.size());
  EXPECT_NEAR(w.mean().item<double>(), 1.0, 1e-4);
  EXPECT_GT(w.std().item<double>(), 0.0);
  EXPECT_TRUE(fitted.sample);  // TOM's loss is the likelihood: the whole distribution was trained

  // The fit happened and is reported; the model predicts the user's dynamics better than before.
  EXPECT_EQ(stage.work().fits, 1.0);
  EXPECT_GT(stage.work().gradient_steps, 0.0);
  EXPECT_EQ(stage.work().fitted_through, replay.total_added());
  EXPECT_TRUE(std::isfinite(stage.last_fit().train_nll));
  EXPECT_LT(models::prediction_mse(stage.model(), all.obs, all.action, all.reward, all.next_obs), untrained_mse);

  // One weights.csv row per fit: the step, then 100 age bins; taken once.
  const auto rows = stage.take_weight_rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].size(), 1u + Stage::kWeightBins);
  EXPECT_EQ(rows[0][0], 240.0);
  EXPECT_TRUE(stage.take_weight_rows().empty());
  Figures objective_figures;
  stage.report_objective(objective_figures);
  EXPECT_FALSE(objective_figures.names().empty());  // TOM's discriminator and dual figures
}

TEST(ModelLearningStage, NamesTheViewAnObjectiveNeedsAndTheBackboneLacks) {
  tom::set_threads(1);
  const auto replay = user_transitions();
  Stage stage(small_model(), objectives::make_objective(small_tom(), kObs, kAct, torch::kCPU));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  EXPECT_NE(test::error_of([&] { stage.fit({replay, {}, 240, 0, gen}); }).find("'tom' needs a policy"),
            std::string::npos);
  // Plain likelihood needs nothing from a backbone.
  Stage mle(small_model(), nullptr);
  const Fitted fitted = mle.fit({replay, {}, 240, 0, gen});
  EXPECT_TRUE(fitted.start_weights.uniform());
  EXPECT_EQ(mle.objective().name(), "mle");
  EXPECT_NE(test::error_of([] { Stage({}, nullptr); }).find("needs a dynamics model"), std::string::npos);
}

TEST(ModelLearningStage, ContinuesExactlyAfterSaveAndLoad) {
  tom::set_threads(1);
  const auto replay = user_transitions();
  const LinearPolicy policy;
  const auto make = [] {
    return Stage(small_model(), objectives::make_objective(small_tom(), kObs, kAct, torch::kCPU),
                 FitData::bootstrap);
  };
  Stage going_on = make();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  going_on.fit({replay, {.policy = &policy}, 240, 0, gen});
  torch::serialize::OutputArchive saved;
  going_on.save(saved);
  // Serialised now: an archive holds the tensors themselves, which the next fit changes.
  torch::serialize::InputArchive reread_archive = reread(saved), again = reread(saved);
  auto gen_copy = gen.clone();
  const Fitted next = going_on.fit({replay, {.policy = &policy}, 240, 0, gen});

  Stage resumed = make();
  resumed.load(reread_archive);
  EXPECT_EQ(resumed.work().fits, 1.0);
  const Fitted resumed_next = resumed.fit({replay, {.policy = &policy}, 240, 0, gen_copy});
  EXPECT_TRUE(torch::equal(next.start_weights.values_or_ones(replay.size()), resumed_next.start_weights.values_or_ones(replay.size())));
  EXPECT_EQ(going_on.last_fit().train_nll, resumed.last_fit().train_nll);
  EXPECT_EQ(going_on.work().fresh_mse, resumed.work().fresh_mse);

  // A checkpoint of another objective is refused by name.
  Stage other(small_model(), nullptr);
  EXPECT_NE(test::error_of([&] { other.load(again); }).find("model objective 'tom'"), std::string::npos);
}

// Only VaGraM (as the TOM code ran it) shapes the backbone's policy batches; the stage
// finds that optional part of an objective and answers 1 for the others.
TEST(ModelLearningStage, ReachesAnObjectivesOptionalParts) {
  objectives::ObjectiveSettings vagram;
  vagram.choice.name = "vagram";
  vagram.vagram.model_data_ramp_epochs = 20;
  Stage ramped(small_model(), objectives::make_objective(vagram, kObs, kAct, torch::kCPU));
  EXPECT_EQ(ramped.model_data_probability(0), 0.0);
  EXPECT_DOUBLE_EQ(ramped.model_data_probability(20), 0.95);
  Stage moved = std::move(ramped);  // the stage keeps reaching it after a move
  EXPECT_DOUBLE_EQ(moved.model_data_probability(10), 0.475);
  Stage mle(small_model(), nullptr);
  EXPECT_EQ(mle.model_data_probability(0), 1.0);
  mle.policy_updated(10);  // no objective part hears it: nothing to do
}

TEST(ObjectiveRegistry, NamesWhatACombinationLacks) {
  EXPECT_EQ(objectives::missing_view("vagram", {.policy = true}, "pets"),
            "vagram needs a value function; the pets backbone has none");
  EXPECT_EQ(objectives::missing_view("pmac", {.policy = true, .value = true}, "pets"),
            "pmac needs snapshots of its policy; the pets backbone has none");
  EXPECT_EQ(objectives::missing_view("tom", {.policy = true}, "pets"), "");
  EXPECT_EQ(objectives::missing_view("mle", {}, "sac"), "");
  EXPECT_NE(test::error_of([] { objectives::objective_entry("tomm"); }).find("valid: mle, tom, pmac, vagram"),
            std::string::npos);
}

}  // namespace
}  // namespace tom::model_learning
