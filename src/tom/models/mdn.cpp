#include "tom/models/mdn.hpp"

#include <cmath>
#include <numbers>

#include "tom/core/error.hpp"
#include "tom/models/checks.hpp"
#include "tom/nn/matmul.hpp"

namespace tom::models {

MixtureDensityNetwork::MixtureDensityNetwork(std::int64_t obs_dim, std::int64_t action_dim,
                                             const MdnSettings& settings, std::uint64_t seed, torch::Device device)
    : DynamicsModel(obs_dim, action_dim, settings.fit, seed, device),
      settings_(settings),
      layers_(settings.hidden_layers + 1) {
  check_settings("mdn", settings_);
  widths_ = {obs_dim + action_dim};
  for (int l = 0; l < settings_.hidden_layers; ++l) widths_.push_back(settings_.hidden_units);
  widths_.push_back(3 * (obs_dim + 1) * settings_.components);
  std::vector<FlatParameters::Spec> specs;
  for (int l = 0; l < layers_; ++l) {
    specs.push_back({fmt::format("weight{}", l), {widths_[l], widths_[l + 1]}, settings_.weight_decay});
    specs.push_back({fmt::format("bias{}", l), {widths_[l + 1]}, 0.0});
  }
  if (settings_.variance_floor == "learned") specs.push_back({"variance_floor", {1}, 0.0});  // starts at 0
  params_ = FlatParameters(specs, device);
  // PyTorch's nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  torch::NoGradGuard no_grad;
  for (int l = 0; l < layers_; ++l) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(widths_[l]));
    for (const auto& tensor : {params_[2 * l], params_[2 * l + 1]})
      tensor.copy_(torch::rand(tensor.sizes(), generator(), torch::kFloat32) * (2 * bound) - bound);
  }
  elites_ = {0};
  for (std::size_t i = 0; i < params_.size(); ++i) parameter_list_.push_back(params_[i]);
}

DynamicsModel::LossAndGradient MixtureDensityNetwork::likelihood_gradient(int slot, const torch::Tensor& inputs,
                                                                         const torch::Tensor& targets,
                                                                         const torch::Tensor& row_weights) {
  auto& [tape, gradient, gradient_views] = slots_.at(static_cast<std::size_t>(slot));
  const auto rows = inputs.size(1);
  if (!tape || tape->rows() < rows) {
    // Sized for a half of the largest minibatch, so that it is made once per fit setting.
    const std::int64_t half_batch = (fit_settings_.batch_size + 1) / 2;
    tape = std::make_unique<MdnTape>(widths_, obs_dim_ + 1, settings_.components, std::max(rows, half_batch),
                                     params_.values().options());
    gradient = torch::empty_like(params_.values());
    gradient_views = params_.views(gradient);
  }
  auto loss = tape->loss_and_gradient(parameter_list_, settings_.min_variance, inputs.select(0, 0),
                                      targets.select(0, 0), row_weights.select(0, 0), gradient_views);
  return {loss, gradient};
}

torch::Tensor MixtureDensityNetwork::network(const torch::Tensor& inputs) {
  const bool training = torch::GradMode::is_enabled();
  auto h = inputs;
  for (int l = 0; l < layers_; ++l) {
    h = nn::linear(h, params_[2 * l], params_[2 * l + 1]);
    // In place when no graph needs the pre-activation.
    if (l + 1 < layers_) h = training ? torch::silu(h) : torch::silu_(h);
  }
  return h.view({inputs.size(0), 3, obs_dim_ + 1, settings_.components});
}

DynamicsModel::RowOutputs MixtureDensityNetwork::forward_rows(const torch::Tensor& inputs,
                                                              const torch::Tensor& targets, bool with_moments) {
  const auto out = network(inputs.select(0, 0));
  const auto means = out.select(1, 0), logits = out.select(1, 2);
  const auto variances = this->variances(out.select(1, 1));
  const auto y = targets.select(0, 0).unsqueeze(-1);
  const auto log_density =
      -0.5 * ((y - means).square() / variances + variances.log() + std::log(2.0 * std::numbers::pi));
  const auto log_likelihood = torch::logsumexp(log_density + logits, -1) - torch::logsumexp(logits, -1);
  const auto objective = -log_likelihood.sum(-1);
  RowOutputs rows{objective.unsqueeze(0), (objective.detach() / double(obs_dim_ + 1)).unsqueeze(0), {}, {}, {}};
  if (with_moments) {
    // Mixture moments; the variance by the law of total variance.
    const auto probabilities = torch::softmax(logits, -1);
    const auto mean = (probabilities * means).sum(-1);
    const auto variance = (probabilities * (variances + (means - mean.unsqueeze(-1)).square())).sum(-1);
    rows.mean = mean.unsqueeze(0);
    rows.logvar = variance.log().unsqueeze(0);
    rows.dim_nll = (-log_likelihood).unsqueeze(0);
  }
  return rows;
}

torch::Tensor MixtureDensityNetwork::variances(const torch::Tensor& raw) {
  if (settings_.variance_floor == "learned") return torch::softplus(raw) + torch::softplus(params_[2 * layers_]);
  return torch::softplus(raw) + settings_.min_variance;
}

Prediction MixtureDensityNetwork::sample(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  const auto inputs = normalised_inputs(obs, action);
  const auto rows = inputs.size(0), outputs = obs_dim_ + 1;
  const std::int64_t components = settings_.components;
  const auto out = network(inputs);
  const auto logits = out.select(1, 2);
  // Unnormalised cumulative mixture weights; the component is the first whose
  // cumulative weight reaches u * total.
  const auto cumulative = torch::exp(logits - std::get<0>(logits.max(-1, /*keepdim=*/true))).cumsum(-1);
  const auto threshold = uniform({rows, outputs, 1}, gen).mul_(cumulative.narrow(-1, components - 1, 1));
  const auto component = (cumulative < threshold).sum(-1, /*keepdim=*/true).clamp_max_(components - 1);
  const auto mean = out.select(1, 0).gather(-1, component).squeeze(-1);
  const auto variance = variances(out.select(1, 1).gather(-1, component).squeeze(-1));
  return to_prediction(obs, torch::addcmul(mean, variance.sqrt_(), gaussian({rows, outputs}, gen)));
}

Prediction MixtureDensityNetwork::mean(const torch::Tensor& obs, const torch::Tensor& action) {
  torch::NoGradGuard no_grad;
  const auto out = network(normalised_inputs(obs, action));
  return to_prediction(obs, (torch::softmax(out.select(1, 2), -1) * out.select(1, 0)).sum(-1));
}

std::vector<std::pair<std::string, std::int64_t>> MixtureDensityNetwork::layout() const {
  return {{"obs_dim", obs_dim_},
          {"action_dim", action_dim_},
          {"hidden_layers", settings_.hidden_layers},
          {"hidden_units", settings_.hidden_units},
          {"components", settings_.components},
          {"learned_variance_floor", settings_.variance_floor == "learned" ? 1 : 0}};
}

}  // namespace tom::models
