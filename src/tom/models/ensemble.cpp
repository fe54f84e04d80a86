#include "tom/models/ensemble.hpp"

#include <cmath>
#include <numbers>

#include "tom/core/error.hpp"
#include "tom/models/checks.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::models {

namespace {

// MBPO's L2 decay of layer `layer` out of `layers` weight matrices: 2.5e-5 for the input
// layer, 5e-5 for the next, 7.5e-5 for the remaining hidden ones, 1e-4 for the output.
double mbpo_weight_decay(int layer, int layers) {
  if (layer == layers - 1) return 1e-4;
  if (layer == 0) return 2.5e-5;
  if (layer == 1) return 5e-5;
  return 7.5e-5;
}

// Normal(0, std) truncated at two standard deviations (MBPO's initialiser), by redrawing.
torch::Tensor truncated_normal(std::vector<std::int64_t> sizes, double std, torch::Generator& gen) {
  auto values = torch::randn(sizes, gen, torch::kFloat32);
  for (auto outside = values.abs() > 2; outside.any().item<bool>(); outside = values.abs() > 2)
    values = torch::where(outside, torch::randn(sizes, gen, torch::kFloat32), values);
  return values * std;
}

}  // namespace

ProbabilisticEnsemble::ProbabilisticEnsemble(std::int64_t obs_dim, std::int64_t action_dim,
                                             const EnsembleSettings& settings, std::uint64_t seed,
                                             torch::Device device)
    : DynamicsModel(obs_dim, action_dim, settings.fit, seed, device),
      settings_(settings),
      layers_(settings.hidden_layers + 1) {
  check_settings("ensemble", settings_);
  if (settings_.elites > settings_.members)
    fail("setting elites = {} exceeds members = {}", settings_.elites, settings_.members);
  const std::int64_t members = settings_.members, outputs = obs_dim + 1;
  std::vector<FlatParameters::Spec> specs;
  std::vector<std::int64_t> widths{obs_dim + action_dim};
  for (int l = 0; l < settings_.hidden_layers; ++l) widths.push_back(settings_.hidden_units);
  widths.push_back(2 * outputs);  // mean and raw log-variance
  for (int l = 0; l < layers_; ++l) {
    const double decay = settings_.weight_decay_scale * mbpo_weight_decay(l, static_cast<int>(layers_));
    specs.push_back({fmt::format("weight{}", l), {members, widths[l], widths[l + 1]}, decay});
    specs.push_back({fmt::format("bias{}", l), {members, 1, widths[l + 1]}, 0.0});
  }
  specs.push_back({"max_logvar", {1, outputs}, 0.0});
  specs.push_back({"min_logvar", {1, outputs}, 0.0});
  params_ = FlatParameters(specs, device);

  torch::NoGradGuard no_grad;
  for (int l = 0; l < layers_; ++l) {
    const auto& weight = params_[2 * l];
    weight.copy_(truncated_normal(weight.sizes().vec(), 1.0 / (2.0 * std::sqrt(double(widths[l]))), generator()));
  }
  max_logvar().fill_(0.5);
  min_logvar().fill_(-10.0);
  for (std::int64_t m = 0; m < settings_.elites; ++m) elites_.push_back(m);
}

std::pair<torch::Tensor, torch::Tensor> ProbabilisticEnsemble::network(const torch::Tensor& inputs,
                                                                       const torch::Tensor& members) {
  const bool training = torch::GradMode::is_enabled();
  auto h = inputs;
  for (int l = 0; l < layers_; ++l) {
    auto weight = params_[2 * l], bias = params_[2 * l + 1];
    if (members.defined()) {
      weight = weight.index_select(0, members);
      bias = bias.index_select(0, members);
    }
    h = nn::linear(h, weight, bias);
    // In place when no graph needs the pre-activation.
    if (l + 1 < layers_) h = training ? torch::silu(h) : torch::silu_(h);
  }
  const auto outputs = obs_dim_ + 1;
  const auto mean = h.narrow(-1, 0, outputs);
  const auto raw_logvar = h.narrow(-1, outputs, outputs);
  // Soft clamp into [min_logvar, max_logvar], differentiable in the bounds.
  auto logvar = max_logvar() - torch::softplus(max_logvar() - raw_logvar);
  logvar = min_logvar() + torch::softplus(logvar - min_logvar());
  return {mean, logvar};
}

torch::Tensor ProbabilisticEnsemble::elite_members() const {
  // Every member in order needs no selection: network() then reads the parameters in place
  // instead of copying all of them on every call (a planner calls it per horizon step).
  bool all_in_order = static_cast<std::int64_t>(elites_.size()) == settings_.members;
  for (std::size_t i = 0; all_in_order && i < elites_.size(); ++i) all_in_order = elites_[i] == static_cast<std::int64_t>(i);
  return all_in_order ? torch::Tensor() : torch::tensor(elites_, torch::kInt64).to(device_);
}

DynamicsModel::RowOutputs ProbabilisticEnsemble::forward_rows(const torch::Tensor& inputs,
                                                              const torch::Tensor& targets, bool with_moments) {
  auto [mean, logvar] = network(inputs, {});
  // MBPO's loss: squared error scaled by the inverse variance, plus the log-variance,
  // averaged over output dimensions; it is 2 * NLL - log(2 pi) per dimension.
  const auto twice_nll = (mean - targets).square() * torch::exp(-logvar) + logvar;
  auto objective = twice_nll.mean(-1);
  auto nll = 0.5 * objective.detach() + 0.5 * std::log(2.0 * std::numbers::pi);
  if (!with_moments) return {objective, nll, mean, logvar, {}};
  return {objective, nll, mean, logvar, 0.5 * (twice_nll + std::log(2.0 * std::numbers::pi))};
}

torch::Tensor ProbabilisticEnsemble::regulariser() {
  return settings_.logvar_bound_penalty * (max_logvar().sum() - min_logvar().sum());
}

Prediction ProbabilisticEnsemble::sample(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  const auto inputs = normalised_inputs(obs, action);
  const auto rows = inputs.size(0), outputs = obs_dim_ + 1;
  if (rows == 0) return to_prediction(obs, torch::zeros({0, outputs}, inputs.options()));
  const auto elites = static_cast<std::int64_t>(elites_.size());
  const auto per_elite = (rows + elites - 1) / elites;
  // A random permutation dealt out in equal blocks: row i goes to a uniformly random elite.
  const auto order = torch::randperm(rows, gen, torch::kInt64).to(device_);
  auto dealt = torch::zeros({elites * per_elite, inputs.size(1)}, inputs.options());
  dealt.narrow(0, 0, rows).copy_(inputs.index_select(0, order));
  const auto members = elite_members();
  auto [mean, logvar] = network(dealt.view({elites, per_elite, -1}), members);
  mean = mean.reshape({-1, outputs}).narrow(0, 0, rows);
  logvar = logvar.reshape({-1, outputs}).narrow(0, 0, rows);
  const auto drawn = torch::addcmul(mean, torch::exp(0.5 * logvar), gaussian({rows, outputs}, gen));
  auto y = torch::empty_like(drawn);
  y.index_copy_(0, order, drawn);
  return to_prediction(obs, y);
}

Prediction ProbabilisticEnsemble::sample_by_block(const torch::Tensor& obs, const torch::Tensor& action,
                                                  torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  const auto inputs = normalised_inputs(obs, action);
  const auto rows = inputs.size(0), outputs = obs_dim_ + 1;
  const auto elites = static_cast<std::int64_t>(elites_.size());
  if (rows % elites != 0) fail("{} rows cannot be shared in equal blocks by {} elites", rows, elites);
  const auto members = elite_members();
  auto [mean, logvar] = network(inputs.view({elites, rows / elites, -1}), members);
  const auto drawn = torch::addcmul(mean.reshape({rows, outputs}), torch::exp(0.5 * logvar.reshape({rows, outputs})),
                                    gaussian({rows, outputs}, gen));
  return to_prediction(obs, drawn);
}

Prediction ProbabilisticEnsemble::mean(const torch::Tensor& obs, const torch::Tensor& action) {
  torch::NoGradGuard no_grad;
  const auto inputs = normalised_inputs(obs, action);
  const auto elites = static_cast<std::int64_t>(elites_.size());
  const auto members = elite_members();
  const auto mean = network(inputs.unsqueeze(0).expand({elites, -1, -1}), members).first;
  return to_prediction(obs, mean.mean(0));
}

std::vector<std::pair<std::string, std::int64_t>> ProbabilisticEnsemble::layout() const {
  return {{"obs_dim", obs_dim_},
          {"action_dim", action_dim_},
          {"members", settings_.members},
          {"elites", settings_.elites},
          {"hidden_layers", settings_.hidden_layers},
          {"hidden_units", settings_.hidden_units}};
}

}  // namespace tom::models
