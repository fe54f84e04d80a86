#pragma once
// The environment interface: Gymnasium's reset/step contract, in C++.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tom::envs {

struct EnvSpec {
  std::string name;
  int obs_dim = 0;
  int action_dim = 0;
  std::vector<double> action_low;   // per action entry; actions outside are passed on
  std::vector<double> action_high;  // unchanged and MuJoCo clamps the force (Gymnasium)
  int max_episode_steps = 1000;
  double dt = 0.0;                  // seconds of simulated time per step
};

struct Step {
  std::vector<double> obs;
  double reward = 0.0;
  bool terminated = false;  // the task ended (fell over, left the healthy range)
  bool truncated = false;   // the time limit was reached
};

class Env {
 public:
  virtual ~Env() = default;
  virtual const EnvSpec& spec() const = 0;
  // Starts an episode. With a seed, re-seeds the environment's generator first; without
  // one, the generator continues, so a seeded sequence of episodes is reproducible.
  virtual std::vector<double> reset(std::optional<std::uint64_t> seed = std::nullopt) = 0;
  // Throws tom::Error for an action of the wrong size or with NaN/inf entries, and when
  // the episode has ended (terminated or truncated) and reset() was not called.
  virtual Step step(std::span<const double> action) = 0;

  // Everything that decides the future of the current episode (simulator state
  // including solver warm-start and any kinematics read before the next step, step
  // count, end flags, generator state) as bytes, so a checkpointed run continues
  // bit-identically. load_state throws tom::Error on bytes from another task or corrupt.
  virtual std::string save_state() const = 0;
  virtual void load_state(const std::string& bytes) = 0;
};

}  // namespace tom::envs
