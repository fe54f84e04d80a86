// Environments: one task (Env) and n copies stepped in C++ (VecEnv), with frames drawn by
// MuJoCo offscreen. The Gymnasium shape (spaces, info dicts, render modes) is the Python
// layer's (tomrl/envs.py).
#include <memory>
#include <optional>
#include <span>

#include <pybind11/stl.h>

#include "bindings.hpp"
#include "tom/core/error.hpp"
#include "tom/envs/mujoco_env.hpp"
#include "tom/envs/registry.hpp"
#include "tom/envs/vec_env.hpp"
#include "tom/figures/frame_renderer.hpp"

namespace tom::python {
namespace {

py::dict spec_dict(const envs::EnvSpec& spec) {
  py::dict out;
  out["name"] = spec.name;
  out["obs_dim"] = spec.obs_dim;
  out["action_dim"] = spec.action_dim;
  out["action_low"] = spec.action_low;
  out["action_high"] = spec.action_high;
  out["max_episode_steps"] = spec.max_episode_steps;
  out["dt"] = spec.dt;
  return out;
}

envs::EnvOptions options_of(int max_episode_steps) {
  if (max_episode_steps < 1) fail("max_episode_steps must be at least 1 (got {})", max_episode_steps);
  envs::EnvOptions options;
  options.max_episode_steps = max_episode_steps;
  return options;
}

// A frame of `env` as a (height, width, 3) uint8 array, through a renderer made on first use.
py::array_t<std::uint8_t> frame(envs::Env& env, std::unique_ptr<runs::FrameRenderer>& renderer, int width, int height) {
  auto* mujoco_env = dynamic_cast<envs::MujocoEnv*>(&env);
  if (!mujoco_env) fail("task {} is not drawn by MuJoCo", env.spec().name);
  if (!renderer || renderer->width() != width || renderer->height() != height)
    renderer = std::make_unique<runs::FrameRenderer>(*mujoco_env, width, height);
  const auto& rgb = renderer->draw(*mujoco_env);
  py::array_t<std::uint8_t> out({height, width, 3});
  std::copy(rgb.begin(), rgb.end(), out.mutable_data());
  return out;
}

class PyEnv {
 public:
  PyEnv(const std::string& name, int max_episode_steps) : env_(envs::make_env(name, options_of(max_episode_steps))) {}
  py::dict spec() const { return spec_dict(env_->spec()); }
  Array reset(std::optional<std::uint64_t> seed) {
    const auto obs = env_->reset(seed);
    return to_array(obs, {static_cast<py::ssize_t>(obs.size())});
  }
  py::tuple step(const Array& action) {
    const Rows rows = rows_of(action, env_->spec().action_dim, "action");
    if (!rows.single) fail("action has {} rows; one environment takes one action (use make_vec for batches)", rows.count);
    const envs::Step step = env_->step(std::span<const double>(rows.data, static_cast<std::size_t>(rows.width)));
    return py::make_tuple(to_array(step.obs, {static_cast<py::ssize_t>(step.obs.size())}), step.reward,
                          step.terminated, step.truncated);
  }
  py::bytes save_state() const { return py::bytes(env_->save_state()); }
  void load_state(const py::bytes& bytes) { env_->load_state(std::string(bytes)); }
  py::array_t<std::uint8_t> render(int width, int height) { return frame(*env_, renderer_, width, height); }

 private:
  std::unique_ptr<envs::Env> env_;
  std::unique_ptr<runs::FrameRenderer> renderer_;
};

class PyVecEnv {
 public:
  PyVecEnv(const std::string& name, int copies, int max_episode_steps)
      : env_(name, copies, options_of(max_episode_steps)) {}
  py::dict spec() const { return spec_dict(env_.spec()); }
  int copies() const { return env_.copies(); }
  Array reset(std::optional<std::uint64_t> seed) {
    return to_array(env_.reset(seed), {env_.copies(), env_.spec().obs_dim});
  }
  py::tuple step(const Array& actions) {
    const Rows rows = rows_of(actions, env_.spec().action_dim, "actions");
    if (rows.single || rows.count != env_.copies())
      fail("actions have {} rows; the vector environment has {} copies", rows.single ? 1 : rows.count, env_.copies());
    envs::VecStep step;
    {
      py::gil_scoped_release release;
      step = env_.step(std::span<const double>(rows.data, static_cast<std::size_t>(rows.count * rows.width)));
    }
    const py::ssize_t n = env_.copies();
    py::array_t<bool> terminated(n), truncated(n);
    for (py::ssize_t i = 0; i < n; ++i) {
      terminated.mutable_data()[i] = step.terminated[static_cast<std::size_t>(i)];
      truncated.mutable_data()[i] = step.truncated[static_cast<std::size_t>(i)];
    }
    return py::make_tuple(to_array(step.obs, {n, env_.spec().obs_dim}), to_array(step.reward, {n}), terminated,
                          truncated);
  }
  py::array_t<std::uint8_t> render(int copy, int width, int height) {
    if (copy < 0 || copy >= env_.copies()) fail("copy {} out of range: there are {} copies", copy, env_.copies());
    if (renderers_.size() != static_cast<std::size_t>(env_.copies())) renderers_.resize(static_cast<std::size_t>(env_.copies()));
    return frame(env_.env(copy), renderers_[static_cast<std::size_t>(copy)], width, height);
  }

 private:
  envs::VecEnv env_;
  std::vector<std::unique_ptr<runs::FrameRenderer>> renderers_;
};

}  // namespace

void bind_envs(py::module_& m) {
  m.def("env_names", &envs::env_names, "the tasks tom-rl knows");
  py::class_<PyEnv>(m, "Env")
      .def(py::init<const std::string&, int>(), py::arg("name"), py::arg("max_episode_steps") = 1000)
      .def("spec", &PyEnv::spec)
      .def("reset", &PyEnv::reset, py::arg("seed") = py::none())
      .def("step", &PyEnv::step, py::arg("action"))
      .def("save_state", &PyEnv::save_state)
      .def("load_state", &PyEnv::load_state, py::arg("state"))
      .def("render", &PyEnv::render, py::arg("width"), py::arg("height"));
  py::class_<PyVecEnv>(m, "VecEnv")
      .def(py::init<const std::string&, int, int>(), py::arg("name"), py::arg("copies"),
           py::arg("max_episode_steps") = 1000)
      .def("spec", &PyVecEnv::spec)
      .def("copies", &PyVecEnv::copies)
      .def("reset", &PyVecEnv::reset, py::arg("seed") = py::none())
      .def("step", &PyVecEnv::step, py::arg("actions"))
      .def("render", &PyVecEnv::render, py::arg("copy"), py::arg("width"), py::arg("height"));
}

}  // namespace tom::python
