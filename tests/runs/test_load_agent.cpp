// tom eval and tom render read only the agent of a checkpoint; it must act exactly as the
// whole trainer restored from the same checkpoint does. Older checkpoint layouts are
// refused with a message naming the cause.
#include <gtest/gtest.h>

#include "../support.hpp"
#include "tom/runs/checkpoint.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/run.hpp"

namespace tom::runs {
namespace {

Config small_mbpo_run() {
  ConfigSources sources;
  sources.env = "inverted_pendulum";
  sources.family = "mbpo-paper";
  sources.overrides = {"run.steps=600",           "run.eval_every=300",          "run.eval_episodes=1",
                       "run.checkpoint_every=300", "run.threads=1",              "mbpo.random_steps=300",
                       "mbpo.rollout_batch_size=200", "sac.hidden_size=32",      "ensemble.hidden_units=16",
                       "ensemble.max_epochs=2"};
  return resolve_config(sources);
}

TEST(LoadAgent, ActsAsTheWholeRestoredTrainer) {
  const auto dir = test::temp_dir("load_agent") / "run";
  const Config config = small_mbpo_run();
  ASSERT_EQ(start_run(config, dir), RunOutcome::kCompleted);

  const auto agent = load_agent(dir);
  auto trainer = make_trainer(config);
  read_checkpoint(dir / "checkpoint.pt").load([&](torch::serialize::InputArchive& archive) { trainer->load(archive); });
  ASSERT_EQ(trainer->env_steps(), 600);
  for (const std::vector<double> obs : {std::vector<double>{0.1, -0.2, 0.3, 0.0}, std::vector<double>{-0.5, 0.4, 1.0, -2.0}})
    EXPECT_EQ(agent->act(obs, /*deterministic=*/true), trainer->act_deterministic(obs));
  EXPECT_EQ(evaluate_run(dir, 2).return_mean, evaluate_run(dir, 2).return_mean);
}

TEST(LoadAgent, RefusesAnOlderCheckpointLayoutByName) {
  const auto dir = test::temp_dir("load_agent_layout") / "run";
  const Config config = small_mbpo_run();
  ASSERT_EQ(start_run(config, dir), RunOutcome::kCompleted);
  // The header an older version wrote: no "layout" entry.
  const Checkpoint current = read_checkpoint(dir / "checkpoint.pt");
  nlohmann::json header = current.header;
  header.erase("layout");
  write_checkpoint(dir / "old.pt", header, [&](torch::serialize::OutputArchive& archive) {
    archive.write("agent", torch::zeros({1}));
  });
  const std::string message = test::error_of([&] { evaluate_run(dir, 1, dir / "old.pt"); });
  EXPECT_NE(message.find("written by an older version of tom (checkpoint layout 1"), std::string::npos) << message;
}

}  // namespace
}  // namespace tom::runs
