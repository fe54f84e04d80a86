#pragma once
// Interaction with the real environment, shared by every backbone: steps the env with a
// given action, stores the transition, resets at episode ends, keeps episode statistics.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <torch/serialize/archive.h>

#include "tom/data/replay_buffer.hpp"
#include "tom/envs/env.hpp"

namespace tom::backbones {

// How the replay buffer stores an episode that ends at the time limit: bootstrap (not
// terminated, so values go on past it, as Gymnasium's `truncated`) or terminal (done, as
// gym's v2 TimeLimit wrapper made it in the TOM authors' loop).
enum class TimeLimitEnds { bootstrap, terminal };
TimeLimitEnds time_limit_ends_from_name(const std::string& name);  // tom::Error if unknown

class Collector {
 public:
  Collector(std::unique_ptr<envs::Env> env, std::uint64_t seed, TimeLimitEnds time_limit_ends = TimeLimitEnds::bootstrap);

  const envs::Env& env() const { return *env_; }
  const std::vector<double>& obs() const { return obs_; }
  // An action drawn uniformly within the env's bounds (initial exploration).
  std::vector<double> random_action();
  // Steps the env, stores the transition in `buffer` (a time-limit end as the constructor
  // said) and resets when the episode ends.
  void step(const std::vector<double>& action, data::ReplayBuffer& buffer);

  std::int64_t episodes() const { return episodes_; }
  double last_episode_return() const { return last_return_; }  // NaN before the first ends
  double last_episode_length() const { return last_length_; }

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  std::unique_ptr<envs::Env> env_;
  TimeLimitEnds time_limit_ends_;
  std::mt19937_64 rng_;
  std::vector<double> obs_;
  bool episode_start_ = true;
  double episode_return_ = 0.0;
  std::int64_t episode_length_ = 0;
  std::int64_t episodes_ = 0;
  double last_return_;
  double last_length_;
};

}  // namespace tom::backbones
