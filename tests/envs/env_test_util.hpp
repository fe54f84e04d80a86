#pragma once
// Helpers shared by the envs tests: random actions and the reference model files.
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tom/envs/env.hpp"

namespace tom::envs::testing {

// Uniform actions within the spec's bounds, widened by `overshoot` on each side (so
// out-of-bound actions, which are passed on unchanged, get exercised too).
inline std::vector<double> random_action(const EnvSpec& spec, std::mt19937_64& rng, double overshoot = 0.0) {
  std::vector<double> action(static_cast<std::size_t>(spec.action_dim));
  for (std::size_t i = 0; i < action.size(); ++i) {
    const double low = spec.action_low[i], high = spec.action_high[i], margin = overshoot * (high - low);
    action[i] = std::uniform_real_distribution<double>(low - margin, high + margin)(rng);
  }
  return action;
}

inline const std::string kReferenceDir = TOM_SHARED_DIR "/reference/mujoco";

// The Gymnasium model file each task loads.
inline std::string reference_model_file(const std::string& env_name) {
  static const std::map<std::string, std::string> files = {
      {"hopper", "hopper.xml"},           {"walker2d", "walker2d.xml"},
      {"walker2d-v5", "walker2d_v5.xml"}, {"halfcheetah", "half_cheetah.xml"},
      {"ant", "ant.xml"},                 {"humanoid", "humanoid.xml"},
      {"inverted_pendulum", "inverted_pendulum.xml"}, {"swimmer", "swimmer.xml"}};
  const auto found = files.find(env_name);
  if (found != files.end()) return kReferenceDir + "/" + found->second;
  const std::string base = env_name.substr(0, env_name.find("-v5"));
  return kReferenceDir + "/" + files.at(base);
}

inline bool reference_available() { return std::filesystem::is_directory(kReferenceDir); }

// |a - b| <= tol, relative to |b| when |b| > 1.
inline bool close(double a, double b, double tol = 1e-6) {
  return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
}

}  // namespace tom::envs::testing
