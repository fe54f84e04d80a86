// Models and model learning on a user's own data: a dynamics model's predictions (a run's,
// or one fitted here), the model-learning stage on arrays of transitions with a policy
// given as a Python callable (TOM's weights, their diagnostics, the fitted model), and the
// finite-MDP check of TOM's ratio estimator.
#include <memory>
#include <optional>

#include <pybind11/stl.h>
#include <torch/torch.h>

#include "bindings.hpp"
#include "tom/core/error.hpp"
#include "tom/core/figures.hpp"
#include "tom/core/threads.hpp"
#include "tom/nn/matmul.hpp"
#include "tom/model_learning/stage.hpp"
#include "tom/models/make_model.hpp"
#include "tom/objectives/finite_verify.hpp"
#include "tom/objectives/make_objective.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/run.hpp"
#include "tom/runs/settings_io.hpp"

namespace tom::python {
namespace {

// A dynamics model held by Python: a run's (as its latest checkpoint left it) or one
// fitted by fit_model.
class PyModel {
 public:
  PyModel(std::shared_ptr<models::DynamicsModel> model, std::int64_t step, std::string kind)
      : model_(std::move(model)), step_(step), kind_(std::move(kind)) {}
  static PyModel of_run(const std::string& dir) {
    runs::RunModel run;
    {
      py::gil_scoped_release release;
      run = runs::load_run_model(dir);
    }
    return PyModel(std::move(run.model), run.step, run.config.mbpo.model);
  }

  // Mean and variance of the next observation and the reward per row (the variance of
  // next_obs is that of the predicted change).
  py::dict predict(const Array& obs, const Array& action) {
    const auto obs_dim = static_cast<py::ssize_t>(model_->obs_dim());
    const Rows o = finite_rows_of(obs, obs_dim, "obs");
    const Rows a = finite_rows_of(action, static_cast<py::ssize_t>(model_->action_dim()), "action");
    if (o.count != a.count || o.single != a.single)
      fail("obs has {} rows and action {}: give one action per observation", o.count, a.count);
    const torch::Tensor obs_rows = rows_tensor(o), action_rows = rows_tensor(a);
    models::DynamicsModel::Moments moments;
    {
      py::gil_scoped_release release;
      moments = model_->moments(obs_rows, action_rows);
    }
    const auto mean = moments.mean.to(torch::kCPU, torch::kFloat64);
    const auto variance = moments.variance.to(torch::kCPU, torch::kFloat64);
    const auto reward = [&](const torch::Tensor& t) -> py::object {
      if (o.single) return py::float_(t[0][0].item<double>());
      return tensor_array(t.select(1, 0));
    };
    py::dict out;
    out["next_obs_mean"] = answer(obs_rows + mean.narrow(1, 1, obs_dim), o);
    out["next_obs_var"] = answer(variance.narrow(1, 1, obs_dim), o);
    out["reward_mean"] = reward(mean);
    out["reward_var"] = reward(variance);
    return out;
  }
  std::int64_t step() const { return step_; }
  const std::string& kind() const { return kind_; }

 private:
  std::shared_ptr<models::DynamicsModel> model_;
  std::int64_t step_;
  std::string kind_;
};

// A user's policy as the view TOM needs: a ~ pi(.|s) for a batch of states, from a Python
// callable taking float64 states [B, O] and returning actions [B, A] (the Python layer
// turns torch modules and torch tensors into that).
class PythonPolicy final : public agents::ActionSampler {
 public:
  PythonPolicy(py::object policy, int obs_dim, int action_dim)
      : policy_(std::move(policy)), obs_dim_(obs_dim), action_dim_(action_dim) {}
  ~PythonPolicy() override {
    py::gil_scoped_acquire gil;
    policy_ = py::object();
  }
  int obs_dim() const override { return obs_dim_; }
  int action_dim() const override { return action_dim_; }
  agents::ActionSample sample_actions(const torch::Tensor& obs, torch::Generator&) const override {
    py::gil_scoped_acquire gil;
    torch::Tensor actions;
    try {
      const Array given = py::cast<Array>(policy_(tensor_array(obs)));
      const Rows rows = finite_rows_of(given, action_dim_, "the policy's actions");
      if (rows.single || rows.count != obs.size(0))
        fail("the policy returned {} rows of actions for {} states", rows.single ? 1 : rows.count, obs.size(0));
      actions = rows_tensor(rows);
    } catch (py::error_already_set& e) {
      fail("the policy raised {}", e.what());
    }
    return {actions.to(obs.device(), obs.scalar_type()), torch::zeros({obs.size(0)}, obs.options())};
  }

 private:
  py::object policy_;
  int obs_dim_, action_dim_;
};

// The settings of a fit: run-config sections (objective, tom, tom_dual, discriminator,
// pmac, vagram, ensemble, mdn, mbpo.model) from "section.name=value" overrides, each
// checked as the command line checks it.
runs::Config fit_config(const std::vector<std::string>& overrides) {
  runs::Config config;
  auto fields = config.fields();
  runs::apply_overrides(fields, overrides, runs::retired_settings(), "settings");
  for (const auto& field : fields) field.check();
  return config;
}

py::dict figures_dict(const Figures& figures) {
  py::dict out;
  for (std::size_t i = 0; i < figures.names().size(); ++i) out[py::str(figures.names()[i])] = figures.values()[i];
  return out;
}

py::object weights_array(const data::Weights& weights, std::int64_t rows) {
  return tensor_array(weights.values_or_ones(rows));
}

py::dict fit_model(const Array& obs, const Array& action, const Array& reward, const Array& next_obs,
                   const std::vector<bool>& terminated, const std::vector<bool>& episode_start, py::object policy,
                   const std::vector<std::string>& overrides, std::uint64_t seed, std::int64_t exploration_steps) {
  if (obs.ndim() != 2 || action.ndim() != 2)
    fail("obs and action must be 2-D arrays (rows, dims); got {} and {} dimensions", obs.ndim(), action.ndim());
  const py::ssize_t n = obs.shape(0), obs_dim = obs.shape(1), action_dim = action.shape(1);
  if (n < 2) fail("fit_model needs at least 2 transitions (got {})", n);
  const Rows o = finite_rows_of(obs, obs_dim, "obs"), a = finite_rows_of(action, action_dim, "action");
  const Rows next = finite_rows_of(next_obs, obs_dim, "next_obs");
  if (a.count != n || next.count != n || reward.ndim() != 1 || reward.shape(0) != n ||
      static_cast<py::ssize_t>(terminated.size()) != n || static_cast<py::ssize_t>(episode_start.size()) != n)
    fail("obs, action, reward, next_obs, terminated and episode_start need one row per transition ({} rows)", n);
  if (exploration_steps < 0 || exploration_steps > n)
    fail("exploration_steps must be in 0..{} (got {})", n, exploration_steps);

  const runs::Config config = fit_config(overrides);
  data::ReplayBuffer replay(n, static_cast<int>(obs_dim), static_cast<int>(action_dim));
  for (py::ssize_t i = 0; i < n; ++i)
    replay.add({o.data + i * obs_dim, static_cast<std::size_t>(obs_dim)},
               {a.data + i * action_dim, static_cast<std::size_t>(action_dim)}, reward.data()[i],
               {next.data + i * obs_dim, static_cast<std::size_t>(obs_dim)}, terminated[static_cast<std::size_t>(i)],
               episode_start[static_cast<std::size_t>(i)]);
  std::unique_ptr<PythonPolicy> sampler;
  if (!policy.is_none()) sampler = std::make_unique<PythonPolicy>(policy, static_cast<int>(obs_dim), static_cast<int>(action_dim));

  std::shared_ptr<models::DynamicsModel> model;
  model_learning::Fitted fitted;
  Figures objective_figures, fit_figures;
  std::vector<double> age_bins;
  {
    py::gil_scoped_release release;
    set_threads(config.run.threads > 0 ? config.run.threads : available_cores());
    nn::set_matmul_precision(nn::parse_precision(config.run.precision));
    model_learning::Stage stage(
        models::make_model(config.mbpo.model, config.ensemble, config.mdn, obs_dim, action_dim, seed, torch::kCPU),
        objectives::make_objective(config.objective, static_cast<int>(obs_dim), static_cast<int>(action_dim),
                                   torch::kCPU));
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    fitted = stage.fit({replay, {.policy = sampler.get()}, n, exploration_steps, gen});
    stage.report_objective(objective_figures);
    fit_figures.add(stage.last_fit());
    fit_figures.add(stage.weights());
    age_bins = stage.weights().age_bins;
    // The model outlives the stage: it moves out with the stage's last act.
    model = std::shared_ptr<models::DynamicsModel>(std::move(stage).release_model());
  }
  py::dict out;
  out["fit_weights"] = weights_array(fitted.fit_weights, n);
  out["start_weights"] = weights_array(fitted.start_weights, n);
  out["weight_age_bins"] = to_array(age_bins, {static_cast<py::ssize_t>(age_bins.size())});
  out["fit"] = figures_dict(fit_figures);
  out["objective"] = figures_dict(objective_figures);
  out["model"] = PyModel(std::move(model), n, config.mbpo.model);
  return out;
}

py::list verify_weights(int states, int actions, bool stochastic, std::uint64_t seed,
                        const std::vector<std::string>& forms, std::optional<int> steps) {
  objectives::FiniteMdpOptions mdp;
  mdp.states = states;
  mdp.actions = actions;
  mdp.stochastic = stochastic;
  if (states < 1 || states > 1000) fail("states must be in 1..1000 (got {})", states);
  if (actions < 1 || actions > 100) fail("actions must be in 1..100 (got {})", actions);
  objectives::TomDualSettings dual = objectives::verification_defaults();
  if (steps) dual.steps = *steps;
  std::vector<std::string> names = forms;
  if (names.empty())
    for (const auto& form : objectives::verification_forms()) names.push_back(form.name);
  for (const auto& name : names) objectives::verification_settings(objectives::verification_form(name), dual).check();
  py::list out;
  for (const auto& name : names) {
    const auto& form = objectives::verification_form(name);
    objectives::Verification result;
    {
      py::gil_scoped_release release;
      set_threads(1);  // as tom verify-weights: one thread, the same figures on any machine
      const auto problem = objectives::random_ratio_problem(mdp, seed);
      result = objectives::verify_form(problem, form, dual, seed);
    }
    py::dict row;
    row["form"] = name;
    row["max_relative_error"] = result.errors.max_relative;
    row["mean_relative_error"] = result.errors.mean_relative;
    row["weighted_l1"] = result.errors.weighted_l1;
    row["steps"] = result.training.steps;
    row["weight_change"] = result.training.weight_change;
    out.append(row);
  }
  return out;
}

}  // namespace

void bind_model_learning(py::module_& m) {
  py::class_<PyModel>(m, "Model")
      .def(py::init(&PyModel::of_run), py::arg("dir"))
      .def("predict", &PyModel::predict, py::arg("obs"), py::arg("action"))
      .def_property_readonly("step", &PyModel::step)
      .def_property_readonly("kind", &PyModel::kind);
  m.def("fit_model", &fit_model, py::arg("obs"), py::arg("action"), py::arg("reward"), py::arg("next_obs"),
        py::arg("terminated"), py::arg("episode_start"), py::arg("policy"), py::arg("overrides"), py::arg("seed"),
        py::arg("exploration_steps"));
  m.def("verify_weights", &verify_weights, py::arg("states"), py::arg("actions"), py::arg("stochastic"),
        py::arg("seed"), py::arg("forms"), py::arg("steps"));
}

}  // namespace tom::python
