// Runs: train and resume (the CLI's settings, checks and messages; the GIL released and
// Ctrl-C turned into a checkpointed stop, as in `tom train`), and what a finished run
// holds: its policy and its dynamics model.
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/core.h>
#include <pybind11/stl.h>
#include <torch/torch.h>

#include "bindings.hpp"
#include "tom/core/error.hpp"
#include "tom/envs/registry.hpp"
#include "tom/runs/backbone_registry.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/run.hpp"

namespace tom::python {
namespace {

namespace fs = std::filesystem;

runs::ConfigSources sources_of(const std::string& env, const std::string& family, const std::string& config_file,
                               const std::vector<std::string>& overrides) {
  runs::ConfigSources sources;
  sources.env = env;
  sources.family = family;
  sources.user_file = config_file;
  sources.overrides = overrides;
  sources.overrides_source = "settings";
  return sources;
}

// Runs `body` without the GIL; `tom::runs` catches SIGINT itself while a run goes on.
// Returns whether the run completed (false: stopped by a signal after its checkpoint).
template <class Body>
bool without_gil(Body&& body) {
  py::gil_scoped_release release;
  return body() == runs::RunOutcome::kCompleted;
}

runs::Config run_config(const fs::path& dir) {
  const fs::path file = dir / "config.toml";
  if (!fs::exists(file)) fail("{} is not a run directory: it has no config.toml", dir.string());
  return runs::load_run_config(runs::read_file(file), file.string());
}

// A run's policy: SAC's actor where the backbone acts with one (both modes, batched),
// else the backbone's own deterministic act (PETS plans).
class PyPolicy {
 public:
  explicit PyPolicy(const std::string& dir) {
    const runs::Config config = run_config(dir);
    const auto spec = envs::make_env(config.run.env)->spec();
    obs_dim_ = spec.obs_dim;
    action_dim_ = spec.action_dim;
    algo_ = config.run.algo;
    py::gil_scoped_release release;
    if (runs::backbone_entry(config.run.algo).agent_acts)
      agent_ = runs::load_agent(dir);
    else
      policy_ = runs::load_policy(dir);
  }
  Array act(const Array& obs, bool deterministic) {
    const Rows rows = finite_rows_of(obs, obs_dim_, "obs");
    if (agent_) {
      torch::Tensor actions;
      {
        py::gil_scoped_release release;
        actions = agent_->act(rows_tensor(rows), deterministic);
      }
      return answer(actions, rows);
    }
    if (!deterministic) fail("a {} run's policy acts deterministically only (act(obs, deterministic=True))", algo_);
    std::vector<double> actions;
    {
      py::gil_scoped_release release;
      for (py::ssize_t r = 0; r < rows.count; ++r) {
        const auto a = policy_(std::span<const double>(rows.data + r * rows.width, static_cast<std::size_t>(rows.width)));
        actions.insert(actions.end(), a.begin(), a.end());
      }
    }
    if (rows.single) return to_array(actions, {action_dim_});
    return to_array(actions, {rows.count, action_dim_});
  }
  int obs_dim() const { return obs_dim_; }
  int action_dim() const { return action_dim_; }

 private:
  int obs_dim_ = 0, action_dim_ = 0;
  std::string algo_;
  std::unique_ptr<agents::Sac> agent_;
  runs::Policy policy_;
};

}  // namespace

void bind_runs(py::module_& m) {
  m.def(
      "resolve_config",
      [](const std::string& env, const std::string& family, const std::string& config_file,
         const std::vector<std::string>& overrides) {
        runs::Config config = runs::resolve_config(sources_of(env, family, config_file, overrides));
        return py::make_tuple(runs::config_to_toml(config), runs::default_run_dir(config),
                              runs::target_entropy_meaning(config));
      },
      py::arg("env"), py::arg("family"), py::arg("config_file"), py::arg("overrides"),
      "the resolved settings as TOML, the default run directory and the entropy target's meaning");
  m.def(
      "train",
      [](const std::string& env, const std::string& family, const std::string& config_file,
         const std::vector<std::string>& overrides, const std::string& out) {
        runs::Config config = runs::resolve_config(sources_of(env, family, config_file, overrides));
        const std::string dir = out.empty() ? runs::default_run_dir(config) : out;
        for (const auto& line : runs::start_lines(config, dir)) fmt::print("{}\n", line);
        std::fflush(stdout);
        const bool completed = without_gil([&] { return runs::start_run(config, dir); });
        return py::make_tuple(dir, completed);
      },
      py::arg("env"), py::arg("family"), py::arg("config_file"), py::arg("overrides"), py::arg("out"),
      "starts a run; returns its directory and whether it completed (false: stopped by Ctrl-C)");
  m.def(
      "resume",
      [](const std::string& dir, std::optional<std::int64_t> steps) {
        if (steps && *steps < 1) fail("steps must be at least 1 (got {})", *steps);
        return without_gil([&] { return runs::resume_run(dir, steps); });
      },
      py::arg("dir"), py::arg("steps") = py::none(), "continues a run from its checkpoint; returns whether it completed");
  m.def(
      "evaluate",
      [](const std::string& dir, int episodes) {
        if (episodes < 1) fail("episodes must be at least 1 (got {})", episodes);
        runs::EvalResult result;
        {
          py::gil_scoped_release release;
          result = runs::evaluate_run(dir, episodes);
        }
        return py::make_tuple(result.return_mean, result.return_std, result.length_mean);
      },
      py::arg("dir"), py::arg("episodes"));
  py::class_<PyPolicy>(m, "Policy")
      .def(py::init<const std::string&>(), py::arg("dir"))
      .def("act", &PyPolicy::act, py::arg("obs"), py::arg("deterministic") = true)
      .def_property_readonly("obs_dim", &PyPolicy::obs_dim)
      .def_property_readonly("action_dim", &PyPolicy::action_dim);
}

}  // namespace tom::python
