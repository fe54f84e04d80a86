#pragma once
// Inside the envs piece: the tasks registered while the program runs (registry.hpp's
// register_env), looked up by the registry's functions.
#include <optional>
#include <string>
#include <vector>

#include "tom/envs/registry.hpp"

namespace tom::envs {

struct RegisteredEnv {
  EnvMaker make;
  TerminationFn termination;  // empty: never ends in rollouts
};

std::optional<RegisteredEnv> find_registered(const std::string& name);
std::vector<std::string> registered_names();
bool is_builtin_env(const std::string& name);  // tasks.cpp

}  // namespace tom::envs
