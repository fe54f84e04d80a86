// The seven tasks, each in its paper form (the MBPO/TOM papers; v4 semantics) and its
// Gymnasium v5 form (<name>-v5). Only what differs between tasks lives here: the model,
// the observation, the health check, the reward settings and the reset noise
// (specification: /work/shared/reference/mujoco/ENVS.md).
#include <algorithm>
#include <cmath>
#include <functional>

#include "tom/core/error.hpp"
#include "tom/envs/mujoco_env.hpp"
#include "tom/envs/registered.hpp"

namespace tom::envs {
namespace {

enum class Form { kPaper, kV5 };

std::string task_name(const char* base, Form form) { return form == Form::kV5 ? std::string(base) + "-v5" : base; }

// The paper forms (like v4) pay the healthy reward on the terminating step too; v5 does not.
RewardWeights weights(Form form, double forward, double ctrl_cost, double healthy) {
  return {.forward = forward, .ctrl_cost = ctrl_cost, .healthy = healthy, .healthy_on_terminal_step = form == Form::kPaper};
}

bool all_finite(const double* values, int count) {
  return std::all_of(values, values + count, [](double v) { return std::isfinite(v); });
}

// Hopper: obs = qpos[1:], qvel clipped to +-10. Healthy while the torso is high and upright
// and no joint position (after the root) or velocity reaches 100 in magnitude.
class Hopper final : public MujocoEnv {
 public:
  Hopper(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("hopper", form), .model = "hopper.xml", .nq = 6, .nv = 6, .nu = 3,
                   .frame_skip = 4, .obs_dim = 11, .reward = weights(form, 1.0, 1e-3, 1.0),
                   .noise = {.scale = 5e-3}},
                  options) {}

 private:
  void write_observation(double* out) const override { write_positions_and_velocities(out, 1, 10.0); }
  bool is_healthy() const override {
    const mjData& d = data();
    const double z = d.qpos[1], angle = d.qpos[2];
    const auto in_state_range = [](double v) { return -100.0 < v && v < 100.0; };  // false for NaN
    return 0.7 < z && -0.2 < angle && angle < 0.2 && std::all_of(d.qpos + 2, d.qpos + 6, in_state_range) &&
           std::all_of(d.qvel, d.qvel + 6, in_state_range);
  }
};

// Walker2d: obs = qpos[1:], qvel clipped to +-10. Healthy while 0.8 < z < 2 and the torso
// angle is within (-1, 1). The v5 model gives the right foot the left foot's friction.
class Walker2d final : public MujocoEnv {
 public:
  Walker2d(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("walker2d", form),
                   .model = form == Form::kV5 ? "walker2d_v5.xml" : "walker2d.xml", .nq = 9, .nv = 9, .nu = 6,
                   .frame_skip = 4, .obs_dim = 17, .reward = weights(form, 1.0, 1e-3, 1.0),
                   .noise = {.scale = 5e-3}},
                  options) {}

 private:
  void write_observation(double* out) const override { write_positions_and_velocities(out, 1, 10.0); }
  bool is_healthy() const override {
    const double z = data().qpos[1], angle = data().qpos[2];
    return 0.8 < z && z < 2.0 && -1.0 < angle && angle < 1.0;
  }
};

// HalfCheetah: obs = qpos[1:], qvel. Never terminates.
class HalfCheetah final : public MujocoEnv {
 public:
  HalfCheetah(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("halfcheetah", form), .model = "half_cheetah.xml", .nq = 9, .nv = 9, .nu = 6,
                   .frame_skip = 5, .obs_dim = 17, .reward = weights(form, 1.0, 0.1, 0.0),
                   .noise = {.scale = 0.1, .qvel_gaussian = true}},
                  options) {}

 private:
  void write_observation(double* out) const override { write_positions_and_velocities(out, 1); }
};

// Ant: the paper form is MBPO's AntTruncatedObs (obs = qpos[2:], qvel: 27); v5 appends the
// external contact forces of the 13 non-world bodies clipped to [-1, 1] (105). Both pay a
// contact cost. Healthy while the state is finite and 0.2 <= z <= 1 (inclusive).
class Ant final : public MujocoEnv {
 public:
  Ant(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("ant", form), .model = "ant.xml", .nq = 15, .nv = 14, .nu = 8,
                   .frame_skip = 5, .obs_dim = form == Form::kV5 ? 105 : 27,
                   .forward = ForwardCoordinate::kTorsoOrigin, .reward = weights(form, 1.0, 0.5, 1.0),
                   .noise = {.scale = 0.1, .qvel_gaussian = true}, .needs_contact_forces = true},
                  options),
        include_contact_forces_(form == Form::kV5) {}

 private:
  static double clip_force(double f) { return std::clamp(f, -1.0, 1.0); }

  void write_observation(double* out) const override {
    out = write_positions_and_velocities(out, 2);
    if (!include_contact_forces_) return;
    const int nbody = model().nbody;
    std::transform(data().cfrc_ext + 6, data().cfrc_ext + 6 * nbody, out, clip_force);
  }
  bool is_healthy() const override {
    const mjData& d = data();
    const double z = d.qpos[2];
    return all_finite(d.qpos, model().nq) && all_finite(d.qvel, model().nv) && 0.2 <= z && z <= 1.0;
  }
  double contact_cost() const override {
    double sum = 0.0;
    for (int i = 0; i < 6 * model().nbody; ++i) sum += clip_force(data().cfrc_ext[i]) * clip_force(data().cfrc_ext[i]);
    return 5e-4 * sum;
  }

  bool include_contact_forces_;
};

// Humanoid: the paper form is MBPO's HumanoidTruncatedObs (obs = qpos[2:], qvel: 45); v5
// appends cinert, cvel, the actuated qfrc_actuator and cfrc_ext, world body excluded (348).
// Both pay the capped contact cost. Healthy while 1 < z < 2.
class Humanoid final : public MujocoEnv {
 public:
  Humanoid(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("humanoid", form), .model = "humanoid.xml", .nq = 24, .nv = 23, .nu = 17,
                   .frame_skip = 5, .obs_dim = form == Form::kV5 ? 348 : 45,
                   .forward = ForwardCoordinate::kCenterOfMass, .reward = weights(form, 1.25, 0.1, 5.0),
                   .noise = {.scale = 1e-2}, .needs_contact_forces = true},
                  options),
        include_body_quantities_(form == Form::kV5) {}

 private:
  void write_observation(double* out) const override {
    out = write_positions_and_velocities(out, 2);
    if (!include_body_quantities_) return;
    const mjData& d = data();
    const int nbody = model().nbody, nv = model().nv;
    out = std::copy(d.cinert + 10, d.cinert + 10 * nbody, out);
    out = std::copy(d.cvel + 6, d.cvel + 6 * nbody, out);
    out = std::copy(d.qfrc_actuator + 6, d.qfrc_actuator + nv, out);  // skip the free joint
    std::copy(d.cfrc_ext + 6, d.cfrc_ext + 6 * nbody, out);
  }
  bool is_healthy() const override {
    const double z = data().qpos[2];
    return 1.0 < z && z < 2.0;
  }
  double contact_cost() const override {
    double sum = 0.0;
    for (int i = 0; i < 6 * model().nbody; ++i) sum += data().cfrc_ext[i] * data().cfrc_ext[i];
    return std::min(5e-7 * sum, 10.0);
  }

  bool include_body_quantities_;
};

// InvertedPendulum: obs = qpos, qvel; +1 per step (v5: 0 on the terminating step).
// Terminates when the state is not finite or the pole leaves |angle| <= 0.2.
class InvertedPendulum final : public MujocoEnv {
 public:
  InvertedPendulum(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("inverted_pendulum", form), .model = "inverted_pendulum.xml", .nq = 2,
                   .nv = 2, .nu = 1, .frame_skip = 2, .obs_dim = 4, .reward = weights(form, 0.0, 0.0, 1.0),
                   .noise = {.scale = 1e-2}},
                  options) {}

 private:
  void write_observation(double* out) const override { write_positions_and_velocities(out, 0); }
  bool is_healthy() const override {
    const mjData& d = data();
    return all_finite(d.qpos, 2) && all_finite(d.qvel, 2) && std::abs(d.qpos[1]) <= 0.2;
  }
};

// Swimmer: obs = qpos[2:], qvel. Never terminates.
class Swimmer final : public MujocoEnv {
 public:
  Swimmer(Form form, const EnvOptions& options)
      : MujocoEnv({.name = task_name("swimmer", form), .model = "swimmer.xml", .nq = 5, .nv = 5, .nu = 2,
                   .frame_skip = 4, .obs_dim = 8, .reward = weights(form, 1.0, 1e-4, 0.0), .noise = {.scale = 0.1}},
                  options) {}

 private:
  void write_observation(double* out) const override { write_positions_and_velocities(out, 2); }
};

struct TaskEntry {
  const char* name;
  std::function<std::unique_ptr<MujocoEnv>(Form, const EnvOptions&)> make;
};

template <class Task>
TaskEntry entry(const char* name) {
  return {name, [](Form form, const EnvOptions& options) { return std::make_unique<Task>(form, options); }};
}

const std::vector<TaskEntry>& tasks() {
  static const std::vector<TaskEntry> all = {
      entry<Hopper>("hopper"), entry<Walker2d>("walker2d"), entry<HalfCheetah>("halfcheetah"),
      entry<Ant>("ant"),       entry<Humanoid>("humanoid"), entry<InvertedPendulum>("inverted_pendulum"),
      entry<Swimmer>("swimmer")};
  return all;
}

}  // namespace

bool is_builtin_env(const std::string& name) {
  for (const TaskEntry& task : tasks())
    if (name == task.name || name == task_name(task.name, Form::kV5)) return true;
  return false;
}

std::vector<std::string> env_names() {
  std::vector<std::string> names;
  for (const TaskEntry& task : tasks()) names.push_back(task.name);
  for (const TaskEntry& task : tasks()) names.push_back(task_name(task.name, Form::kV5));
  for (auto& name : registered_names()) names.push_back(std::move(name));
  return names;
}

std::unique_ptr<MujocoEnv> make_mujoco_env(const std::string& name, const EnvOptions& options) {
  for (const TaskEntry& task : tasks()) {
    if (name == task.name) return task.make(Form::kPaper, options);
    if (name == task_name(task.name, Form::kV5)) return task.make(Form::kV5, options);
  }
  fail_unknown("unknown environment '{}'; valid names: {}", name, join(env_names()));
}

std::unique_ptr<Env> make_env(const std::string& name, const EnvOptions& options) {
  if (const auto registered = find_registered(name)) {
    auto env = registered->make(options);
    if (!env) fail("the maker of environment '{}' returned no environment", name);
    return env;
  }
  return make_mujoco_env(name, options);
}

}  // namespace tom::envs
