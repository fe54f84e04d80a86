#include <gtest/gtest.h>

#include <limits>
#include <sstream>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/data/replay_buffer.hpp"
#include "../support.hpp"

namespace {

using tom::data::ReplayBuffer;
using tom::data::Weights;

// Transition i has obs filled with i, action with -i, reward i, next_obs i + 0.5.
void add_numbered(ReplayBuffer& buffer, int i, bool episode_start = false) {
  const std::vector<double> obs(buffer.obs_dim(), i), next(buffer.obs_dim(), i + 0.5);
  const std::vector<double> action(buffer.action_dim(), -i);
  buffer.add(obs, action, i, next, i % 2 == 1, episode_start);
}

std::vector<float> column(const torch::Tensor& t) {
  const auto c = (t.dim() == 2 ? t.select(1, 0) : t).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

TEST(ReplayBuffer, AddStoresTransitions) {
  ReplayBuffer buffer(5, 3, 2);
  add_numbered(buffer, 1);
  add_numbered(buffer, 2);
  EXPECT_EQ(buffer.size(), 2);
  EXPECT_EQ(buffer.total_added(), 2);
  const auto all = buffer.all();
  EXPECT_EQ(all.obs.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(column(all.obs), (std::vector<float>{1, 2}));
  EXPECT_EQ(column(all.action), (std::vector<float>{-1, -2}));
  EXPECT_EQ(column(all.reward), (std::vector<float>{1, 2}));
  EXPECT_EQ(column(all.next_obs), (std::vector<float>{1.5, 2.5}));
  EXPECT_EQ(column(all.terminated), (std::vector<float>{1, 0}));
}

TEST(ReplayBuffer, WrapsAroundAndTracksInsertionOrder) {
  ReplayBuffer buffer(4, 2, 1);
  for (int i = 0; i < 6; ++i) add_numbered(buffer, i);
  EXPECT_EQ(buffer.size(), 4);
  EXPECT_EQ(buffer.total_added(), 6);
  // Slots 0 and 1 were overwritten by transitions 4 and 5.
  EXPECT_EQ(column(buffer.all().obs), (std::vector<float>{4, 5, 2, 3}));
  const auto rank = buffer.insertion_index();
  EXPECT_TRUE(torch::equal(rank, torch::tensor({2, 3, 0, 1}, torch::kInt64)));
}

TEST(ReplayBuffer, EpisodeStartsFollowStoredEpisodes) {
  ReplayBuffer buffer(4, 2, 1);
  for (int i = 0; i < 4; ++i) add_numbered(buffer, i, i == 0 || i == 2);
  EXPECT_EQ(column(buffer.episode_start_obs()), (std::vector<float>{0, 2}));
  add_numbered(buffer, 4, true);  // overwrites the start of the first episode
  add_numbered(buffer, 5);
  EXPECT_EQ(column(buffer.episode_start_obs()), (std::vector<float>{2, 4}));
}

TEST(ReplayBuffer, AddBatchWrapsAndKeepsTheNewest) {
  ReplayBuffer buffer(5, 2, 1);
  add_numbered(buffer, 0, true);
  const auto n = 7;
  const auto ids = torch::arange(10, 10 + n, torch::kFloat32);
  buffer.add_batch(ids.unsqueeze(1).repeat({1, 2}), -ids.unsqueeze(1), ids, ids.unsqueeze(1).repeat({1, 2}),
                   torch::zeros({n}, torch::kBool));
  EXPECT_EQ(buffer.size(), 5);
  EXPECT_EQ(buffer.total_added(), 8);
  // The last five rows (12..16) are kept, written from slot 1 on and wrapping to slot 0.
  EXPECT_EQ(column(buffer.all().obs), (std::vector<float>{16, 12, 13, 14, 15}));
  EXPECT_TRUE(torch::equal(buffer.insertion_index(), torch::tensor({4, 0, 1, 2, 3}, torch::kInt64)));
  EXPECT_EQ(buffer.episode_start_obs().size(0), 0);
  EXPECT_THROW(buffer.add_batch(torch::zeros({2, 3}), torch::zeros({2, 1}), torch::zeros({2}), torch::zeros({2, 2}),
                                torch::zeros({2})),
               tom::Error);
  EXPECT_THROW(buffer.add_batch(torch::zeros({2, 2}), torch::zeros({2, 1}), torch::zeros({3}), torch::zeros({2, 2}),
                                torch::zeros({2})),
               tom::Error);
}

TEST(ReplayBuffer, RejectsBadTransitions) {
  EXPECT_THROW(ReplayBuffer(0, 2, 1), tom::Error);
  EXPECT_THROW(ReplayBuffer(5, 0, 1), tom::Error);
  ReplayBuffer buffer(5, 2, 1);
  const std::vector<double> good(2, 0.0), short_obs(1, 0.0), action(1, 0.0);
  const std::vector<double> nan_obs{0.0, std::numeric_limits<double>::quiet_NaN()};
  EXPECT_THROW(buffer.add(short_obs, action, 0, good, false), tom::Error);
  EXPECT_THROW(buffer.add(good, good, 0, good, false), tom::Error);
  EXPECT_THROW(buffer.add(good, action, 0, nan_obs, false), tom::Error);
  EXPECT_THROW(buffer.add(good, action, std::numeric_limits<double>::infinity(), good, false), tom::Error);
  EXPECT_EQ(buffer.size(), 0);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  EXPECT_THROW(buffer.sample(4, gen), tom::Error);
}

TEST(ReplayBuffer, UniformSamplingDrawsStoredRows) {
  tom::set_threads(1);
  ReplayBuffer buffer(10, 2, 1);
  for (int i = 0; i < 3; ++i) add_numbered(buffer, i);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const auto batch = buffer.sample(3000, gen);
  EXPECT_EQ(batch.size(), 3000);
  const auto counts = torch::bincount(batch.obs.select(1, 0).to(torch::kInt64), {}, 3);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(counts[i].item<double>(), 1000, 150);
  // Rows stay consistent across fields.
  EXPECT_TRUE(torch::equal(batch.reward, batch.obs.select(1, 0)));
  EXPECT_TRUE(torch::equal(batch.action.select(1, 0), -batch.reward));
}

TEST(ReplayBuffer, WeightedSamplingFollowsWeights) {
  tom::set_threads(1);
  ReplayBuffer buffer(10, 2, 1);
  for (int i = 0; i < 4; ++i) add_numbered(buffer, i);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto weights = Weights::checked(torch::tensor({1.0f, 0.0f, 3.0f, 6.0f}), 4, "test");
  const auto batch = buffer.sample_weighted(10000, weights, gen);
  const auto counts = torch::bincount(batch.obs.select(1, 0).to(torch::kInt64), {}, 4);
  EXPECT_EQ(counts[1].item<std::int64_t>(), 0);  // weight 0: never drawn
  EXPECT_NEAR(counts[0].item<double>(), 1000, 150);
  EXPECT_NEAR(counts[2].item<double>(), 3000, 250);
  EXPECT_NEAR(counts[3].item<double>(), 6000, 250);
}

// Weights are checked once, where they are made: shape, finiteness, sign, not all zero;
// then they average 1 and name their source in every refusal.
TEST(Weights, CheckedOnceAndRescaledToMeanOne) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(torch::allclose(Weights::checked(torch::tensor({1.0, 3.0}), 2, "x").values(), torch::tensor({0.5f, 1.5f})));
  EXPECT_THROW(Weights::checked(torch::ones({4}), 3, "x"), tom::Error);
  EXPECT_THROW(Weights::checked(torch::ones({3, 1}), 3, "x"), tom::Error);
  EXPECT_THROW(Weights::checked(torch::Tensor(), 3, "x"), tom::Error);
  EXPECT_THROW(Weights::checked(torch::tensor({1.0f, nan, 1.0f}), 3, "x"), tom::Error);
  EXPECT_THROW(Weights::checked(torch::tensor({1.0f, inf, 1.0f}), 3, "x"), tom::Error);
  EXPECT_THROW(Weights::checked(torch::tensor({1.0f, -1.0f, 1.0f}), 3, "x"), tom::Error);
  EXPECT_THROW(Weights::checked(torch::ones({3}, torch::kInt64), 3, "x"), tom::Error);
  EXPECT_NE(tom::test::error_of([] { Weights::checked(torch::zeros({3}), 3, "objective 'pmac'"); })
                .find("objective 'pmac' gave all-zero weights"),
            std::string::npos);
  // A resample keeps each slot's weight, unscaled; uniform weights stay uniform.
  const auto w = Weights::checked(torch::tensor({1.0, 3.0}), 2, "x");
  EXPECT_TRUE(torch::equal(w.resampled(torch::tensor({1, 1, 0})).values(), torch::tensor({1.5f, 1.5f, 0.5f})));
  EXPECT_TRUE(Weights().resampled(torch::tensor({1, 0})).uniform());
  EXPECT_TRUE(torch::equal(Weights().values_or_ones(3), torch::ones({3})));
}

TEST(ReplayBuffer, WeightedSamplingRefusesStaleWeightsAndDrawsUniformly) {
  ReplayBuffer buffer(10, 2, 1);
  for (int i = 0; i < 3; ++i) add_numbered(buffer, i);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
  const auto for_two = Weights::checked(torch::ones({2}), 2, "x");
  EXPECT_THROW(buffer.sample_weighted(4, for_two, gen), tom::Error);  // made before the buffer grew
  EXPECT_THROW(buffer.sample_weighted(0, Weights::checked(torch::ones({3}), 3, "x"), gen), tom::Error);
  // Uniform weights draw exactly as sample() does.
  auto gen_a = at::make_generator<at::CPUGeneratorImpl>(5), gen_b = at::make_generator<at::CPUGeneratorImpl>(5);
  EXPECT_TRUE(torch::equal(buffer.sample_weighted(6, Weights(), gen_a).obs, buffer.sample(6, gen_b).obs));
}

std::string saved(const ReplayBuffer& buffer) {
  torch::serialize::OutputArchive archive;
  buffer.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void restore(ReplayBuffer& buffer, const std::string& bytes) {
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in);
  buffer.load(archive);
}

TEST(ReplayBuffer, SaveLoadContinuesExactly) {
  ReplayBuffer buffer(4, 2, 1);
  for (int i = 0; i < 6; ++i) add_numbered(buffer, i, i % 3 == 0);
  ReplayBuffer restored(4, 2, 1);
  restore(restored, saved(buffer));
  EXPECT_EQ(restored.size(), 4);
  EXPECT_EQ(restored.total_added(), 6);
  for (auto* b : {&buffer, &restored}) add_numbered(*b, 6);
  EXPECT_TRUE(torch::equal(restored.all().obs, buffer.all().obs));
  EXPECT_TRUE(torch::equal(restored.all().terminated, buffer.all().terminated));
  EXPECT_TRUE(torch::equal(restored.insertion_index(), buffer.insertion_index()));
  EXPECT_TRUE(torch::equal(restored.episode_start_obs(), buffer.episode_start_obs()));
}

TEST(ReplayBuffer, LoadRejectsOtherShapes) {
  ReplayBuffer buffer(4, 2, 1);
  add_numbered(buffer, 0);
  const auto bytes = saved(buffer);
  ReplayBuffer other_capacity(5, 2, 1), other_obs(4, 3, 1), other_action(4, 2, 2);
  try {
    restore(other_capacity, bytes);
    FAIL() << "expected tom::Error";
  } catch (const tom::Error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
  }
  EXPECT_THROW(restore(other_obs, bytes), tom::Error);
  EXPECT_THROW(restore(other_action, bytes), tom::Error);
}

}  // namespace
