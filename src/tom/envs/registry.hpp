#pragma once
// Creates environments by name: hopper, walker2d, halfcheetah, ant, humanoid,
// inverted_pendulum, swimmer (the forms of the MBPO and TOM papers) and <task>-v5.
#include <memory>
#include <string>
#include <vector>

#include "tom/core/termination_fn.hpp"
#include "tom/envs/env.hpp"

namespace tom::envs {

struct EnvOptions {
  int max_episode_steps = 1000;
  // Load this MJCF file instead of the project's own model (parity tests use the
  // reference files). Empty: the project's embedded model.
  std::string model_file;
};

// Throws tom::Error listing the valid names when `name` is unknown.
std::unique_ptr<Env> make_env(const std::string& name, const EnvOptions& options = {});
std::vector<std::string> env_names();
TerminationFn termination_fn(const std::string& name);

}  // namespace tom::envs
