// Environments written in Python, trained by tom-rl: a registered maker gives an adapter
// (tomrl/user_envs.py) around the user's Gymnasium-style env, and PythonEnv drives it from
// the C++ loop, taking the GIL only for the env's own calls. Its checkpoint state is the
// pickled env, so a run on it resumes exactly when the env pickles.
#include <cmath>
#include <memory>
#include <optional>
#include <span>

#include <pybind11/stl.h>
#include <torch/torch.h>

#include "bindings.hpp"
#include "tom/core/error.hpp"
#include "tom/envs/registry.hpp"

namespace tom::python {
namespace {

// A Python object kept by C++ (a maker, a termination rule), released under the GIL
// whatever thread drops it last, and left alone once the interpreter is gone (a static
// registry outliving it at exit).
std::shared_ptr<py::object> kept(py::object object) {
  return std::shared_ptr<py::object>(new py::object(std::move(object)), [](py::object* p) {
    if (Py_IsInitialized() && !_Py_IsFinalizing()) {
      py::gil_scoped_acquire gil;
      delete p;
    } else {
      p->release();
      delete p;
    }
  });
}

// Runs a Python call; a Python exception becomes a tom::Error naming the env and the call.
template <class Call>
auto python_call(const std::string& env, const char* what, Call&& call) {
  try {
    return call();
  } catch (py::error_already_set& e) {
    fail("environment '{}': {} raised {}", env, what, e.what());
  }
}

std::vector<double> finite_vector(const py::handle& values, std::size_t size, const std::string& env,
                                  const char* what) {
  const auto array = py::cast<Array>(values);
  if (static_cast<std::size_t>(array.size()) != size)
    fail("environment '{}': {} has {} entries, its space {}", env, what, array.size(), size);
  std::vector<double> out(array.data(), array.data() + size);
  for (std::size_t i = 0; i < size; ++i)
    if (!std::isfinite(out[i])) fail("environment '{}': {} entry {} is {}", env, what, i, out[i]);
  return out;
}

class PythonEnv final : public envs::Env {
 public:
  PythonEnv(py::object adapter, envs::EnvSpec spec) : adapter_(std::move(adapter)), spec_(std::move(spec)) {}
  ~PythonEnv() override {
    py::gil_scoped_acquire gil;  // the run may end on a thread without the GIL
    adapter_ = py::object();
  }
  const envs::EnvSpec& spec() const override { return spec_; }

  std::vector<double> reset(std::optional<std::uint64_t> seed) override {
    py::gil_scoped_acquire gil;
    auto obs = python_call(spec_.name, "reset()", [&] {
      return finite_vector(adapter_.attr("reset")(seed ? py::object(py::int_(*seed)) : py::object(py::none())),
                           static_cast<std::size_t>(spec_.obs_dim), spec_.name, "reset()'s observation");
    });
    steps_ = 0;
    ended_ = false;
    return obs;
  }

  envs::Step step(std::span<const double> action) override {
    if (ended_) fail("environment '{}': step() after the episode ended; call reset()", spec_.name);
    if (action.size() != static_cast<std::size_t>(spec_.action_dim))
      fail("environment '{}': action has {} entries, expected {}", spec_.name, action.size(), spec_.action_dim);
    for (std::size_t i = 0; i < action.size(); ++i)
      if (!std::isfinite(action[i])) fail("environment '{}': action entry {} is {}", spec_.name, i, action[i]);
    py::gil_scoped_acquire gil;
    envs::Step out = python_call(spec_.name, "step()", [&] {
      const auto result = py::cast<py::tuple>(adapter_.attr("step")(to_array(
          std::vector<double>(action.begin(), action.end()), {static_cast<py::ssize_t>(action.size())})));
      envs::Step step;
      step.obs = finite_vector(result[0], static_cast<std::size_t>(spec_.obs_dim), spec_.name, "step()'s observation");
      step.reward = py::cast<double>(result[1]);
      step.terminated = py::cast<bool>(result[2]);
      step.truncated = py::cast<bool>(result[3]);
      return step;
    });
    if (!std::isfinite(out.reward)) fail("environment '{}': step()'s reward is {}", spec_.name, out.reward);
    if (++steps_ >= spec_.max_episode_steps && !out.terminated) out.truncated = true;
    ended_ = out.terminated || out.truncated;
    return out;
  }

  std::string save_state() const override {
    py::gil_scoped_acquire gil;
    const auto env = python_call(spec_.name, "pickling for a checkpoint",
                                 [&] { return py::cast<std::string>(adapter_.attr("save_state")()); });
    return std::to_string(steps_) + " " + std::to_string(ended_ ? 1 : 0) + " " + env;
  }

  void load_state(const std::string& bytes) override {
    std::size_t steps_end = bytes.find(' '), ended_end = steps_end == std::string::npos ? steps_end : bytes.find(' ', steps_end + 1);
    if (ended_end == std::string::npos) fail("environment '{}': the checkpoint's state is corrupt", spec_.name);
    int steps = 0;
    try {
      steps = std::stoi(bytes.substr(0, steps_end));
    } catch (const std::exception&) {
      fail("environment '{}': the checkpoint's state is corrupt", spec_.name);
    }
    py::gil_scoped_acquire gil;
    python_call(spec_.name, "unpickling a checkpoint", [&] {
      adapter_.attr("load_state")(py::bytes(bytes.substr(ended_end + 1)));
      return 0;
    });
    steps_ = steps;
    ended_ = bytes[steps_end + 1] == '1';
  }

 private:
  py::object adapter_;
  envs::EnvSpec spec_;
  int steps_ = 0;
  bool ended_ = true;
};

envs::EnvSpec spec_of(const std::string& name, const py::dict& spec, int max_episode_steps) {
  envs::EnvSpec out;
  out.name = name;
  out.obs_dim = py::cast<int>(spec["obs_dim"]);
  out.action_dim = py::cast<int>(spec["action_dim"]);
  out.action_low = py::cast<std::vector<double>>(spec["action_low"]);
  out.action_high = py::cast<std::vector<double>>(spec["action_high"]);
  out.dt = py::cast<double>(spec["dt"]);
  // The env's own limit where it states one, else the caller's (1000 for runs).
  out.max_episode_steps = spec["max_episode_steps"].is_none() ? max_episode_steps : py::cast<int>(spec["max_episode_steps"]);
  return out;
}

// The rule as a TerminationFn: rows cross as float64 arrays, flags come back as bools.
TerminationFn termination_of(const std::string& name, py::object rule) {
  if (rule.is_none()) return {};
  auto shared = kept(std::move(rule));
  return [name, shared](const torch::Tensor& obs, const torch::Tensor& action, const torch::Tensor& next_obs) {
    py::gil_scoped_acquire gil;
    return python_call(name, "the termination rule", [&] {
      const auto flags = py::cast<py::array_t<bool, py::array::c_style | py::array::forcecast>>(
          (*shared)(tensor_array(obs), tensor_array(action), tensor_array(next_obs)));
      if (flags.ndim() != 1 || flags.shape(0) != next_obs.size(0))
        fail("environment '{}': the termination rule must return one flag per row ({} rows)", name, next_obs.size(0));
      auto out = torch::empty({flags.shape(0)}, torch::kBool);
      std::copy(flags.data(), flags.data() + flags.shape(0), out.data_ptr<bool>());
      return out;
    });
  };
}

}  // namespace

void bind_user_envs(py::module_& m) {
  m.def(
      "register_env",
      [](const std::string& name, py::object make_adapter, py::object termination) {
        auto maker = kept(std::move(make_adapter));
        envs::register_env(
            name,
            [name, maker](const envs::EnvOptions& options) -> std::unique_ptr<envs::Env> {
              py::gil_scoped_acquire gil;
              return python_call(name, "making the environment", [&] {
                const auto made = py::cast<py::tuple>((*maker)());
                return std::make_unique<PythonEnv>(made[0], spec_of(name, made[1], options.max_episode_steps));
              });
            },
            termination_of(name, std::move(termination)));
      },
      py::arg("name"), py::arg("make_adapter"), py::arg("termination"));
  m.def("unregister_env", &envs::unregister_env, py::arg("name"));
}

}  // namespace tom::python
