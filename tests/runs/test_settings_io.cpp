#include <gtest/gtest.h>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/settings_io.hpp"
#include "../support.hpp"

using tom::runs::Config;

namespace {

using tom::test::error_of;

Config resolve(std::vector<std::string> overrides, std::string env = "hopper") {
  tom::runs::ConfigSources sources;
  sources.env = std::move(env);
  sources.overrides = std::move(overrides);
  return tom::runs::resolve_config(sources);
}


}  // namespace

TEST(Config, TaskDefaultsAndOverridesApply) {
  const Config pendulum = resolve({}, "inverted_pendulum");
  EXPECT_EQ(pendulum.run.steps, 20000);
  EXPECT_EQ(pendulum.sac_loop.random_steps, 1000);
  const Config config = resolve({"sac.actor_lr=1e-3", "run.steps=42", "sac.learn_alpha=false"});
  EXPECT_DOUBLE_EQ(config.sac.actor_lr, 1e-3);
  EXPECT_EQ(config.run.steps, 42);
  EXPECT_FALSE(config.sac.learn_alpha);
  EXPECT_EQ(config.run.env, "hopper");
}

// A run uses every core it may by default, and records the number it resolved to, so
// that its config.toml resumes with the same count.
TEST(Config, ThreadsDefaultToTheAvailableCoresAndAreRecorded) {
  Config config = resolve({});
  EXPECT_EQ(config.run.threads, tom::available_cores());
  EXPECT_GE(config.run.threads, 1);
  EXPECT_NE(tom::runs::config_to_toml(config).find(fmt::format("threads = {}", tom::available_cores())),
            std::string::npos);
  EXPECT_EQ(resolve({"run.threads=1"}).run.threads, 1);
  EXPECT_EQ(resolve({"run.threads=0"}).run.threads, tom::available_cores());
  EXPECT_NE(error_of([] { resolve({"run.threads=-1"}); }).find("out of range"), std::string::npos);
}

TEST(Config, BadInputNamesTheProblem) {
  EXPECT_NE(error_of([] { resolve({"sac.nope=1"}); }).find("unknown setting 'sac.nope'"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"nosection.x=1"}); }).find("sections:"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"run.steps=ten"}); }).find("expects an integer"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"run.steps=0"}); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"sac.gamma=nan"}); }).find("finite"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"sac.learn_alpha=maybe"}); }).find("true or false"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"run.steps"}); }).find("section.name=value"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({}, "hoper"); }).find("valid: "), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"run.algo=dqn"}); }).find("not one of"), std::string::npos);
}

TEST(Config, TomlTypesAreChecked) {
  Config config;
  auto fields = config.fields();
  EXPECT_NE(error_of([&] { tom::runs::apply_toml(fields, "[run]\nsteps = 1.5\n", "f.toml"); }).find("expects an integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tom::runs::apply_toml(fields, "[run]\nsteps = \n", "f.toml"); }).find("f.toml:2"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tom::runs::apply_toml(fields, "steps = 3\n", "f.toml"); }).find("[section]"),
            std::string::npos);
  tom::runs::apply_toml(fields, "[sac]\nactor_lr = 1\n", "f.toml");  // an integer is a valid number
  EXPECT_DOUBLE_EQ(config.sac.actor_lr, 1.0);
}

TEST(Config, ResolvedTomlRoundTrips) {
  Config config = resolve({"sac.tau=0.01", "run.device=cpu", "run.seed=7"});
  const std::string text = tom::runs::config_to_toml(config);
  Config again = tom::runs::load_run_config(text, "config.toml");
  EXPECT_EQ(tom::runs::config_to_toml(again), text);
  EXPECT_DOUBLE_EQ(again.sac.tau, 0.01);
  EXPECT_EQ(again.run.seed, 7);
  // Negative zero is written as a TOML float: "-0" would read back as the integer 0 (a
  // fuzzing finding, fuzz/corpus/settings/finding_negative_zero_toml).
  Config negative_zero = resolve({"sac.target_entropy=-0"});
  const std::string zero_text = tom::runs::config_to_toml(negative_zero);
  EXPECT_NE(zero_text.find("target_entropy = -0.0"), std::string::npos);
  Config zero_again = tom::runs::load_run_config(zero_text, "config.toml");
  EXPECT_EQ(tom::runs::config_to_toml(zero_again), zero_text);
}

// A run recorded before a setting was retired resumes (and compares) without it; a user
// who sets it hears why it went.
TEST(Config, RetiredSettingsAreSkippedInRunRecordsAndRefusedFromUsers) {
  Config config = resolve({"run.algo=mbpo", "objective.name=tom"});
  std::string recorded = tom::runs::config_to_toml(config);
  const auto section = recorded.find("[tom_dual]\n");
  ASSERT_NE(section, std::string::npos);
  recorded.insert(section + 11, "normalise = true  # rescale the weights of a buffer to mean 1\n");
  Config again = tom::runs::load_run_config(recorded, "config.toml");
  EXPECT_EQ(tom::runs::config_to_toml(again), tom::runs::config_to_toml(config));
  EXPECT_EQ(tom::runs::resumed_settings(recorded, "config.toml").count("tom_dual.normalise"), 0u);
  const std::string from_override = error_of([] { resolve({"tom_dual.normalise=false"}); });
  EXPECT_NE(from_override.find("command line: setting 'tom_dual.normalise' was removed"), std::string::npos)
      << from_override;
  EXPECT_NE(from_override.find("mean 1"), std::string::npos) << from_override;
  auto fields = config.fields();
  const std::string from_file = error_of([&] {
    tom::runs::apply_toml(fields, "[tom_dual]\nnormalise = true\n", "mine.toml", tom::runs::Origin::user,
                          tom::runs::retired_settings());
  });
  EXPECT_NE(from_file.find("mine.toml: setting 'tom_dual.normalise' was removed"), std::string::npos) << from_file;
  // A key that never existed is still unknown in a run record.
  std::string misspelt = recorded;
  misspelt.insert(section + 11, "normalize = true\n");
  EXPECT_NE(error_of([&] { tom::runs::load_run_config(misspelt, "config.toml"); })
                .find("unknown setting 'tom_dual.normalize'"),
            std::string::npos);
}

TEST(Config, ModelObjectiveSettings) {
  const Config tom = resolve({"run.algo=mbpo", "objective.name=tom", "tom_dual.form=conjugate-u", "pmac.form=tv",
                              "discriminator.enabled=false", "vagram.quantile=0.9"});
  EXPECT_EQ(tom.objective.choice.name, "tom");
  EXPECT_EQ(tom.objective.dual.form, "conjugate-u");
  EXPECT_EQ(tom.objective.pmac.form, "tv");
  EXPECT_FALSE(tom.objective.discriminator.enabled);
  EXPECT_DOUBLE_EQ(tom.objective.vagram.quantile, 0.9);
  EXPECT_EQ(resolve({}).objective.choice.name, "mle");
  EXPECT_NE(error_of([] { resolve({"run.algo=mbpo", "objective.name=mse"}); }).find("not one of"), std::string::npos);
  EXPECT_NE(error_of([] { resolve({"run.algo=mbpo", "tom_dual.form=lagrangian"}); }).find("not one of"),
            std::string::npos);
  // SAC learns no model: asking it for a model objective is a mistake worth naming.
  EXPECT_NE(error_of([] { resolve({"run.algo=sac", "objective.name=tom"}); }).find("model-based backbone"),
            std::string::npos);
}

namespace tom::runs {
namespace {

// The preset documented in docs/tom_weights.md changes only the dual's budget and
// schedule of the family it is laid over.
TEST(ConfigPresets, TomDualConvergeKeepsTheFamilyButTheDualsBudget) {
  ConfigSources sources;
  sources.env = "hopper";
  sources.family = "tom-paper";
  const Config family = resolve_config(sources);
  sources.user_file = std::string(TOM_SOURCE_DIR) + "/configs/presets/tom_dual_converge.toml";
  const Config preset = resolve_config(sources);
  EXPECT_EQ(preset.objective.dual.schedule, "converge");
  EXPECT_EQ(preset.objective.dual.steps, 5000);
  EXPECT_EQ(preset.objective.dual.check_every, 1000);
  EXPECT_EQ(preset.objective.dual.lr, family.objective.dual.lr);
  EXPECT_EQ(preset.objective.dual.ema, family.objective.dual.ema);
  EXPECT_EQ(preset.objective.dual.clip_max, family.objective.dual.clip_max);
  EXPECT_EQ(preset.objective.tom.warm_start, true);
}

// docs/fidelity.md's pets-paper table, value by value (the authors' halfcheetah config).
TEST(ConfigFamilies, PetsPaperRunsTheAuthorsHalfcheetahSettings) {
  ConfigSources sources;
  sources.env = "halfcheetah";
  sources.family = "pets-paper";
  const Config c = resolve_config(sources);
  EXPECT_EQ(c.run.algo, "pets");
  EXPECT_EQ(c.run.steps, 300000);
  EXPECT_EQ(c.pets.random_steps, 1000);
  EXPECT_EQ(c.pets.train_every, 0);
  EXPECT_EQ(c.pets.propagation, "ts-inf");
  EXPECT_EQ(c.cem.method, "cem");
  EXPECT_EQ(c.cem.horizon, 30);
  EXPECT_EQ(c.cem.population, 500);
  EXPECT_EQ(c.cem.elites, 50);
  EXPECT_EQ(c.cem.iterations, 5);
  EXPECT_DOUBLE_EQ(c.cem.momentum, 0.1);
  EXPECT_EQ(c.cem.particles, 20);
  EXPECT_EQ(c.ensemble.members, 5);
  EXPECT_EQ(c.ensemble.elites, 5);
  EXPECT_EQ(c.ensemble.hidden_layers, 4);
  EXPECT_EQ(c.ensemble.hidden_units, 200);
  EXPECT_DOUBLE_EQ(c.ensemble.weight_decay_scale, 1.0);
  EXPECT_TRUE(c.ensemble.bootstrap);
  EXPECT_DOUBLE_EQ(c.ensemble.fit.learning_rate, 1e-3);
  EXPECT_EQ(c.ensemble.fit.batch_size, 32);
  EXPECT_EQ(c.ensemble.fit.max_epochs, 5);
  EXPECT_GE(c.ensemble.fit.patience, c.ensemble.fit.max_epochs);  // no early stopping
  EXPECT_EQ(c.ensemble.fit.epoch, "pass");
  // The paper ran PETS on no other task of ours: the family says so by name.
  sources.env = "hopper";
  EXPECT_NE(test::error_of([&] { resolve_config(sources); }).find("no setting family 'pets-paper' for hopper"),
            std::string::npos);
}

}  // namespace
}  // namespace tom::runs
