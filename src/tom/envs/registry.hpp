#pragma once
// Creates environments by name: hopper, walker2d, halfcheetah, ant, humanoid,
// inverted_pendulum, swimmer (the forms of the MBPO and TOM papers) and <task>-v5.
#include <functional>
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

// Tasks added while the program runs (the Python package's own environments): make_env,
// env_names and termination_fn find them beside the built-in tasks. Names are letters,
// digits, '_' and '-', never a built-in task's; registering a name again replaces it.
// An empty `termination` means the task never ends in a model's rollouts.
using EnvMaker = std::function<std::unique_ptr<Env>(const EnvOptions&)>;
void register_env(const std::string& name, EnvMaker make, TerminationFn termination = {});
// Whether `name` was registered (and is now removed).
bool unregister_env(const std::string& name);

}  // namespace tom::envs
