#include "tom/agents/distilled_policy.hpp"

#include <cmath>

#include <torch/torch.h>

#include "tom/agents/squashed_gaussian.hpp"
#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::agents {
namespace {

std::vector<std::int64_t> policy_sizes(const DistillSettings& s, int obs_dim, int action_dim) {
  std::vector<std::int64_t> sizes{obs_dim};
  for (int l = 0; l < s.hidden_layers; ++l) sizes.push_back(s.hidden_size);
  sizes.push_back(2 * action_dim);
  return sizes;
}

constexpr double kEdge = 1.0 - 1e-4;  // executed actions are read inside +-kEdge before atanh

}  // namespace

DistilledPolicy::DistilledPolicy(const DistillSettings& settings, int obs_dim, const std::vector<double>& low,
                                 const std::vector<double>& high, std::uint64_t seed, torch::Device device)
    : settings_(settings),
      obs_dim_(obs_dim),
      action_dim_(static_cast<int>(low.size())),
      device_(device),
      init_gen_(at::detail::createCPUGenerator(seed)),
      net_(policy_sizes(settings, obs_dim, static_cast<int>(low.size())), init_gen_, nn::Init::torch_default, device),
      adam_(net_.num_parameters(), settings.lr, device) {
  if (low.empty() || low.size() != high.size()) fail("the distilled policy needs bounds per action dimension");
  const auto lo = torch::tensor(low, torch::kFloat64), hi = torch::tensor(high, torch::kFloat64);
  scale_ = ((hi - lo) / 2).to(device_, torch::kFloat32);
  offset_ = ((hi + lo) / 2).to(device_, torch::kFloat32);
}

torch::Tensor DistilledPolicy::head(const torch::Tensor& obs, const torch::Tensor& parameters) const {
  if (!obs.defined() || obs.dim() != 2 || obs.size(1) != obs_dim_)
    fail("the distilled policy takes observations [B, {}], got {}", obs_dim_, shape_of(obs));
  return nn::mlp_forward(net_.layer_views(parameters), obs.to(device_, torch::kFloat32));
}

DistillFigures DistilledPolicy::fit(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) {
  const std::int64_t n = obs.size(0);
  if (n == 0 || action.dim() != 2 || action.size(0) != n || action.size(1) != action_dim_)
    fail("distillation needs observations [N, {}] and actions [N, {}], got {} and {}", obs_dim_, action_dim_,
         shape_of(obs), shape_of(action));
  const auto s = obs.to(device_, torch::kFloat32);
  const auto u = torch::atanh(((action.to(device_, torch::kFloat32) - offset_) / scale_).clamp(-kEdge, kEdge));
  DistillFigures figures;
  double nll_sum = 0;
  int nll_count = 0;
  for (int step = 0; step < settings_.steps; ++step) {
    const auto rows = torch::randint(n, {std::min<std::int64_t>(settings_.batch, n)}, gen, torch::kInt64).to(device_);
    const auto p = net_.parameters().detach().clone().requires_grad_(true);
    const auto out = head(s.index_select(0, rows), p);
    const auto mean = out.narrow(1, 0, action_dim_);
    const auto log_std = out.narrow(1, action_dim_, action_dim_).clamp(kLogStdMin, kLogStdMax);
    const auto z = (u.index_select(0, rows) - mean) * torch::exp(-log_std);
    const auto nll = (0.5 * z.square() + log_std).sum(1).mean() + 0.5 * action_dim_ * std::log(2 * M_PI);
    const auto grad = torch::autograd::grad({nll}, {p})[0];
    adam_.step(net_.parameters(), grad);
    if (step >= settings_.steps - 10) {
      nll_sum += nll.item<double>();
      ++nll_count;
    }
  }
  torch::NoGradGuard no_grad;
  const auto taken = action.to(device_, torch::kFloat32);
  const auto squashed_mean = offset_ + scale_ * torch::tanh(head(s, net_.parameters()).narrow(1, 0, action_dim_));
  figures.nll = nll_count > 0 ? nll_sum / nll_count : 0.0;
  figures.action_rmse = (squashed_mean - taken).square().mean().sqrt().item<double>();
  return figures;
}

ActionSample DistilledPolicy::sample_actions(const torch::Tensor& obs, torch::Generator& gen) const {
  torch::NoGradGuard no_grad;
  const auto out = head(obs, net_.parameters());
  const auto noise = torch::randn({obs.size(0), action_dim_}, gen, torch::kFloat32).to(device_);
  const SquashedSample sample = squashed_gaussian(out, noise);
  return {offset_ + scale_ * sample.action, sample.log_prob};
}

GaussianHead DistilledPolicy::policy_gaussian(const torch::Tensor& obs, const torch::Tensor& parameters) const {
  if (!parameters.defined() || parameters.numel() != net_.num_parameters())
    fail("a policy snapshot must hold {} parameters, got {}", net_.num_parameters(),
         parameters.defined() ? parameters.numel() : 0);
  torch::NoGradGuard no_grad;
  const auto out = head(obs, parameters.to(device_, torch::kFloat32));
  return {out.narrow(1, 0, action_dim_), out.narrow(1, action_dim_, action_dim_).clamp(kLogStdMin, kLogStdMax)};
}

void DistilledPolicy::save(torch::serialize::OutputArchive& archive) const {
  archive.write("parameters", net_.parameters().to(torch::kCPU).clone());
  adam_.save(archive, "adam/");
}

void DistilledPolicy::load(torch::serialize::InputArchive& archive) {
  const auto values = read_tensor(archive, "parameters", "the distilled policy");
  if (values.dim() != 1 || values.numel() != net_.num_parameters())
    fail("the checkpoint's distilled policy has {} parameters, this one {}", values.numel(), net_.num_parameters());
  net_.set_parameters(values.to(device_, torch::kFloat32));
  adam_.load(archive, "adam/");
}

}  // namespace tom::agents
