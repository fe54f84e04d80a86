#pragma once
#include <map>
#include <string>

namespace tom::envs {

// The project's MJCF files (assets/mujoco/*.xml), compiled in; keyed by file name.
const std::map<std::string, std::string>& embedded_models();

}  // namespace tom::envs
