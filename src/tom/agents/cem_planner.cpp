#include "tom/agents/cem_planner.hpp"

#include <cmath>

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::agents {
namespace {

// Standard normal draws truncated at +-2 (redrawn until inside), as mbrl-lib samples.
torch::Tensor truncated_normal(std::vector<std::int64_t> sizes, torch::Generator& gen, torch::Device device) {
  auto z = torch::randn(sizes, gen, torch::kFloat32);
  for (auto outside = z.abs() > 2; outside.any().item<bool>(); outside = z.abs() > 2)
    z.masked_scatter_(outside, torch::randn({outside.sum().item<std::int64_t>()}, gen, torch::kFloat32));
  return z.to(device);
}

}  // namespace

CemPlanner::CemPlanner(const CemSettings& settings, const std::vector<double>& low, const std::vector<double>& high,
                       std::uint64_t seed, torch::Device device)
    : settings_(settings),
      device_(device),
      action_dim_(static_cast<std::int64_t>(low.size())),
      gen_(at::detail::createCPUGenerator(seed)) {
  if (settings_.elites > settings_.population)
    fail("cem.elites ({}) must not exceed cem.population ({})", settings_.elites, settings_.population);
  if (low.empty() || low.size() != high.size())
    fail("the planner needs one lower and one upper bound per action dimension ({} and {} given)", low.size(),
         high.size());
  for (std::size_t i = 0; i < low.size(); ++i)
    if (!std::isfinite(low[i]) || !std::isfinite(high[i]) || !(low[i] < high[i]))
      fail("action bound {} is [{}, {}]: the planner needs finite bounds with low < high", i, low[i], high[i]);
  low_ = torch::tensor(low, torch::kFloat64).to(device_, torch::kFloat32);
  high_ = torch::tensor(high, torch::kFloat64).to(device_, torch::kFloat32);
}

void CemPlanner::reset() { mean_ = torch::Tensor(); }

std::vector<double> CemPlanner::act(std::span<const double> obs, const ParticleStep& step, int blocks) {
  if (blocks < 1 || settings_.particles % blocks != 0)
    fail("cem.particles ({}) must be a multiple of the model's {} predictors (TS-inf gives each the same share)",
         settings_.particles, blocks);
  torch::NoGradGuard no_grad;
  const std::int64_t horizon = settings_.horizon;
  const auto middle = ((low_ + high_) / 2).unsqueeze(0);
  // Warm start: the previous plan one step on, its new last step at the middle.
  torch::Tensor mean = !mean_.defined() ? middle.expand({horizon, action_dim_}).clone()
                                        : torch::cat({mean_.narrow(0, 1, horizon - 1), middle});
  torch::Tensor var = ((high_ - low_).square() / 16).unsqueeze(0).expand({horizon, action_dim_}).clone();
  const auto start = torch::tensor(std::vector<double>(obs.begin(), obs.end()), torch::kFloat64)
                         .to(device_, torch::kFloat32)
                         .unsqueeze(0);
  const double alpha = settings_.momentum;
  for (int iteration = 0; iteration < settings_.iterations; ++iteration) {
    // Inside the bounds: no more than two standard deviations from either.
    const auto room = torch::minimum((mean - low_) / 2, (high_ - mean) / 2).square();
    const auto std = torch::minimum(room, var).sqrt();
    const auto sequences =
        mean + std * truncated_normal({settings_.population, horizon, action_dim_}, gen_, device_);
    auto values = returns(start, sequences, step, blocks);
    values = torch::nan_to_num(values, -1e10, -1e10, -1e10);
    const auto [top, order] = values.topk(settings_.elites);
    const auto elite = sequences.index_select(0, order);
    mean = alpha * mean + (1 - alpha) * elite.mean(0);
    var = alpha * var + (1 - alpha) * elite.var(0, /*unbiased=*/false);
    best_return_ = top[0].item<double>();
    elite_return_ = top.mean().item<double>();
  }
  mean_ = mean;
  const auto first = torch::clamp(mean[0], low_, high_).to(torch::kCPU, torch::kFloat64).contiguous();
  return {first.data_ptr<double>(), first.data_ptr<double>() + action_dim_};
}

torch::Tensor CemPlanner::returns(const torch::Tensor& obs, const torch::Tensor& sequences, const ParticleStep& step,
                                  int blocks) const {
  // Rows laid out [blocks, population, particles / blocks]: block b holds every
  // sequence's particles that predictor b propagates.
  const std::int64_t population = sequences.size(0), per_block = settings_.particles / blocks;
  const std::int64_t rows = population * settings_.particles;
  const auto sequence_of_row = torch::arange(population, torch::TensorOptions(torch::kInt64).device(device_))
                                   .view({1, population, 1})
                                   .expand({blocks, population, per_block})
                                   .reshape({rows});
  torch::Tensor state = obs.expand({rows, obs.size(1)});
  auto total = torch::zeros({rows}, state.options());
  auto alive = torch::ones({rows}, state.options());
  for (std::int64_t t = 0; t < settings_.horizon; ++t) {
    const auto action = sequences.select(1, t).index_select(0, sequence_of_row);
    const ParticleStepResult next = step(state, action);
    if (!next.next_obs.defined() || next.next_obs.sizes() != state.sizes() || !next.reward.defined() ||
        next.reward.numel() != rows || !next.terminated.defined() || next.terminated.numel() != rows)
      fail("a planning step must return [{}, {}] observations and [{}] rewards and flags", rows, state.size(1), rows);
    // A particle's reward counts up to and including the step that ends it.
    total.add_(next.reward.reshape({rows}).to(total.dtype()) * alive);
    alive.mul_((~next.terminated.reshape({rows}).to(torch::kBool)).to(alive.dtype()));
    state = next.next_obs;
  }
  return total.view({blocks, population, per_block}).mean(std::vector<std::int64_t>{0, 2});
}

void CemPlanner::save(torch::serialize::OutputArchive& archive) const {
  archive.write("plan", mean_.defined() ? mean_.to(torch::kCPU) : torch::empty({0}));
  archive.write("gen", gen_.get_state());
}

void CemPlanner::load(torch::serialize::InputArchive& archive) {
  const auto plan = read_tensor(archive, "plan", "the planner");
  if (plan.numel() == 0) {
    mean_ = torch::Tensor();
  } else if (plan.dim() != 2 || plan.size(0) != settings_.horizon || plan.size(1) != action_dim_) {
    fail("the checkpoint's plan has shape {}, this planner's is [{}, {}]", shape_of(plan), settings_.horizon,
         action_dim_);
  } else {
    mean_ = plan.to(device_, torch::kFloat32);
  }
  gen_.set_state(read_tensor(archive, "gen", "the planner"));
}

}  // namespace tom::agents
