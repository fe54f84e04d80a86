#include "tom/objectives/vagram_objective.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::objectives {
namespace {

void check_rows(const agents::ValueFunction& agent, const torch::Tensor& next_obs, int chunk) {
  if (!next_obs.defined() || next_obs.dim() != 2 || next_obs.size(1) != agent.obs_dim())
    fail("vagram: next observations must have shape [N, {}], got {}", agent.obs_dim(), shape_of(next_obs));
  if (chunk < 1) fail("vagram: chunk must be positive (got {})", chunk);
}

// A per-transition table [N, O] on the CPU, looked up by each minibatch row's index on
// the device of the model's outputs (a copy there is made at the first call and kept).
class RowTable {
 public:
  explicit RowTable(const torch::Tensor& table) {
    if (!table.defined() || table.dim() != 2 || table.size(0) < 1)
      fail("vagram: the gradient table must have shape [N >= 1, O], got {}", shape_of(table));
    cpu_ = table.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  }
  std::int64_t outputs() const { return cpu_.size(1); }

  // Checks the shapes of a batch against the table and returns the rows [M, B, O].
  torch::Tensor rows_of(const models::BatchLossInput& in) {
    const std::int64_t n = cpu_.size(0), o = cpu_.size(1);
    const auto& mean = in.mean;
    if (!mean.defined() || mean.dim() != 3 || mean.size(2) != 1 + o)
      fail("vagram loss: predicted means must have shape [M, B, {}], got {}", 1 + o, shape_of(mean));
    if (!in.target.defined() || in.target.sizes() != mean.sizes())
      fail("vagram loss: targets must have shape {}, got {}", shape_of(mean), shape_of(in.target));
    const std::vector<std::int64_t> rows_shape{mean.size(0), mean.size(1)};
    if (!in.indices.defined() || in.indices.sizes() != rows_shape)
      fail("vagram loss: indices must have shape [{}, {}], got {}", mean.size(0), mean.size(1),
           shape_of(in.indices));
    const auto flat = in.indices.reshape({-1}).to(torch::kInt64);
    if (flat.numel() > 0) {
      const auto [lo, hi] = torch::aminmax(flat);
      if (lo.item<std::int64_t>() < 0 || hi.item<std::int64_t>() >= n)
        fail("vagram loss: row indices must be in [0, {}) (the buffer given to plan()), got [{}, {}]", n,
             lo.item<std::int64_t>(), hi.item<std::int64_t>());
    }
    return on(mean.device()).index_select(0, flat.to(mean.device())).view({mean.size(0), mean.size(1), o});
  }

 private:
  // The table on `device`. A model's gradient step may call the loss from two threads at
  // once (its two halves), so the device copy is made under a lock.
  const torch::Tensor& on(const torch::Device& device) {
    if (device.is_cpu()) return cpu_;
    const std::lock_guard<std::mutex> lock(device_copy_mutex_);
    if (!on_device_.defined() || on_device_.device() != device) on_device_ = cpu_.to(device);
    return on_device_;
  }

  torch::Tensor cpu_, on_device_;
  std::mutex device_copy_mutex_;
};

}  // namespace

void VagramSettings::check() { check_settings("vagram", *this); }

torch::Tensor mean_next_actions(const agents::ValueFunction& agent, const torch::Tensor& next_obs, int chunk) {
  check_rows(agent, next_obs, chunk);
  torch::NoGradGuard no_grad;
  const std::int64_t n = next_obs.size(0);
  auto out = torch::empty({n, agent.action_dim()}, torch::kFloat32);
  for (std::int64_t start = 0; start < n; start += chunk) {
    const auto length = std::min<std::int64_t>(chunk, n - start);
    out.narrow(0, start, length).copy_(agent.mean_actions(next_obs.narrow(0, start, length)));
  }
  return out;
}

torch::Tensor value_gradients(const agents::ValueFunction& agent, const torch::Tensor& next_obs,
                              const torch::Tensor& next_action, int chunk) {
  check_rows(agent, next_obs, chunk);
  const std::int64_t n = next_obs.size(0), o = next_obs.size(1);
  if (!next_action.defined() || next_action.dim() != 2 || next_action.size(0) != n ||
      next_action.size(1) != agent.action_dim())
    fail("vagram: next actions must have shape [{}, {}], got {}", n, agent.action_dim(), shape_of(next_action));
  auto out = torch::empty({4, n, o}, torch::kFloat32);
  torch::AutoGradMode enable_grad(true);  // the caller may be under a NoGradGuard
  for (std::int64_t start = 0; start < n; start += chunk) {
    const auto length = std::min<std::int64_t>(chunk, n - start);
    // A fresh leaf per chunk; a' is detached, so only the path through s' is differentiated.
    const auto s = next_obs.narrow(0, start, length).detach().to(torch::kFloat32).clone().requires_grad_(true);
    const auto a = next_action.narrow(0, start, length).detach().to(next_obs.device(), torch::kFloat32);
    const auto online = agent.q_values(s, a), target = agent.target_q_values(s, a);
    const torch::Tensor critics[4] = {online.q1, online.q2, target.q1, target.q2};
    for (int v = 0; v < 4; ++v) {
      if (!critics[v].requires_grad())
        fail("vagram: the agent's Q values are not differentiable with respect to the state");
      // Rows are independent, so d(sum of Q)/ds' holds each row's own gradient.
      const auto g = torch::autograd::grad({critics[v].sum()}, {s}, {}, /*retain_graph=*/v < 3)[0];
      out[v].narrow(0, start, length).copy_(g.detach());
    }
  }
  return out;
}

ClippedGradients clip_gradient_norms(const torch::Tensor& gradients, double quantile) {
  if (!gradients.defined() || gradients.dim() != 3 || gradients.size(1) < 1)
    fail("vagram: gradients must have shape [critics, N >= 1, O], got {}", shape_of(gradients));
  if (!(quantile >= 0.0 && quantile <= 1.0)) fail("vagram: quantile must be in [0, 1] (got {})", quantile);
  torch::NoGradGuard no_grad;
  const auto norms = gradients.to(torch::kFloat64).norm(2, {2});  // [C, N]
  // Linear interpolation between order statistics (torch::quantile's default), written
  // out because torch::quantile is limited to 16M elements.
  const auto sorted = std::get<0>(norms.sort(1));
  const std::int64_t n = norms.size(1);
  const double position = quantile * static_cast<double>(n - 1);
  const auto lo = static_cast<std::int64_t>(std::floor(position));
  const auto hi = std::min(lo + 1, n - 1);
  const double frac = position - static_cast<double>(lo);
  const auto thresholds = sorted.select(1, lo) + frac * (sorted.select(1, hi) - sorted.select(1, lo));  // [C]
  // Scale min(1, c / |g|); rows with |g| = 0 stay 0.
  const auto scale = (thresholds.unsqueeze(1) / norms.clamp_min(1e-300)).clamp_max(1.0);
  return {(gradients * scale.unsqueeze(2).to(gradients.scalar_type())), thresholds};
}

models::BatchLoss vagram_batch_loss(torch::Tensor squared_gradients, bool add_mse) {
  auto table = std::make_shared<RowTable>(squared_gradients);
  return [table, add_mse](const models::BatchLossInput& in) -> torch::Tensor {
    const auto h = table->rows_of(in);
    const auto error = in.mean - in.target;
    const auto o = table->outputs();
    // in.logvar is deliberately unused: the loss shapes the mean only.
    auto loss = (error.narrow(2, 1, o).square() * h.to(error.scalar_type())).mean(2) + error.select(2, 0).square();
    if (add_mse) loss = loss + error.square().mean(2);
    return loss;
  };
}

models::BatchLoss vagram_weighted_nll_loss(torch::Tensor gradient_magnitudes, bool add_nll) {
  auto table = std::make_shared<RowTable>(gradient_magnitudes);
  return [table, add_nll](const models::BatchLossInput& in) -> torch::Tensor {
    const auto m = table->rows_of(in);
    const auto o = table->outputs();
    if (!in.dim_nll.defined() || in.dim_nll.sizes() != in.mean.sizes())
      fail("vagram loss: per-dimension NLLs must have shape {}, got {}", shape_of(in.mean), shape_of(in.dim_nll));
    if (!in.target_scale.defined() || in.target_scale.dim() != 1 || in.target_scale.size(0) != 1 + o)
      fail("vagram loss: the target scale must have shape [{}], got {}", 1 + o, shape_of(in.target_scale));
    const auto weight = m.to(in.dim_nll.scalar_type()) *
                        in.target_scale.narrow(0, 1, o).to(in.dim_nll.device(), in.dim_nll.scalar_type());
    // vaml.py:276, 295, 300 and loss.mean(): the weighted state terms [B, O] plus the
    // reward's NLL broadcast over them, averaged over the state dimensions.
    auto loss = (in.dim_nll.narrow(2, 1, o) * weight).mean(2) + in.dim_nll.select(2, 0);
    if (add_nll) loss = loss + in.dim_nll.mean(2);  // vaml.py:177-179 (add_mse)
    return loss;
  };
}

double VagramObjective::model_data_probability(std::int64_t epoch) const {
  if (settings_.model_data_ramp_epochs == 0) return 1.0;
  // mbpo.py:355-357: truncated_linear(0, 20, 0, 0.95, epoch).
  const double progress = static_cast<double>(std::max<std::int64_t>(epoch, 0)) / settings_.model_data_ramp_epochs;
  return 0.95 * std::min(1.0, progress);
}

VagramObjective::VagramObjective(VagramSettings settings) : settings_(std::move(settings)) { settings_.check(); }

FitPlan VagramObjective::plan(const FitContext& context) {
  const auto& replay = context.replay;
  if (replay.size() == 0) fail("vagram: the replay buffer is empty");
  const auto next_obs = replay.all().next_obs;
  const agents::ValueFunction& value = context.value("vagram");
  const auto next_action = mean_next_actions(value, next_obs, settings_.chunk);
  const auto gradients = value_gradients(value, next_obs, next_action, settings_.chunk);
  torch::NoGradGuard no_grad;
  if (!torch::isfinite(gradients).all().item<bool>()) fail("vagram: the value gradients contain NaN or inf");
  mean_norm_ = gradients.to(torch::kFloat64).norm(2, {2}).mean().item<double>();
  auto clipped = clip_gradient_norms(gradients, settings_.quantile);
  thresholds_.clear();
  for (std::int64_t v = 0; v < clipped.thresholds.size(0); ++v) thresholds_.push_back(clipped.thresholds[v].item<double>());
  mean_threshold_ = clipped.thresholds.mean().item<double>();
  FitPlan plan{replay_transitions(replay)};
  const bool warming_up = context.env_steps < context.exploration_steps + settings_.mse_warmup_steps;
  if (settings_.form == "published") {
    plan.loss = vagram_batch_loss(clipped.gradients.square().mean(0), warming_up);
    plan.trains_distribution = false;  // the loss shapes the predicted mean only
  } else {
    plan.loss = vagram_weighted_nll_loss(clipped.gradients.abs().mean(0), warming_up);
  }
  if (settings_.epoch != "model") plan.epoch = settings_.epoch;
  return plan;
}

}  // namespace tom::objectives
