#include "tom/agents/cem_planner.hpp"

#include <cmath>

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"
#include "tom/core/settings.hpp"
#include "tom/core/worker_thread.hpp"

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

torch::Tensor coloured_noise(std::int64_t n, std::int64_t horizon, std::int64_t dims, double exponent,
                             torch::Generator& gen) {
  if (exponent == 0) return torch::randn({n, horizon, dims}, gen, torch::kFloat32);
  // Random Fourier coefficients with amplitude f^(-exponent/2) (the lowest frequency
  // floored at 1/horizon), transformed back, then scaled to unit variance per step.
  const std::int64_t bins = horizon / 2 + 1;
  auto amplitude = torch::arange(bins, torch::kFloat64) / static_cast<double>(horizon);
  amplitude[0] = 1.0 / static_cast<double>(horizon);
  amplitude = amplitude.pow(-exponent / 2);
  auto real = torch::randn({n, dims, bins}, gen, torch::kFloat64) * amplitude;
  auto imag = torch::randn({n, dims, bins}, gen, torch::kFloat64) * amplitude;
  // The zero frequency (and, for an even horizon, the highest) is real-valued.
  imag.select(2, 0).zero_();
  real.select(2, 0).mul_(std::sqrt(2.0));
  if (horizon % 2 == 0) {
    imag.select(2, bins - 1).zero_();
    real.select(2, bins - 1).mul_(std::sqrt(2.0));
  }
  const auto signal = torch::fft::irfft(torch::complex(real, imag), horizon, 2);
  // Each step's variance: (2 / horizon)^2 times the coefficients' power, the real-valued
  // ones at half weight.
  auto power = amplitude.square();
  power[0] = power[0] / 2;
  if (horizon % 2 == 0) power[bins - 1] = power[bins - 1] / 2;
  const double sigma = 2.0 * std::sqrt(power.sum().item<double>()) / static_cast<double>(horizon);
  return (signal / sigma).transpose(1, 2).to(torch::kFloat32).contiguous();
}

CemPlanner::CemPlanner(const CemSettings& settings, const std::vector<double>& low, const std::vector<double>& high,
                       std::uint64_t seed, torch::Device device)
    : settings_(settings),
      device_(device),
      action_dim_(static_cast<std::int64_t>(low.size())),
      gen_(at::detail::createCPUGenerator(seed)),
      particle_gens_{at::detail::createCPUGenerator(seed + 1), at::detail::createCPUGenerator(seed + 2)},
      icem_(settings.method == "icem") {
  check_settings("cem", settings_);
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

CemPlanner::~CemPlanner() = default;

void CemPlanner::reset() {
  mean_ = torch::Tensor();
  kept_ = torch::Tensor();
}

torch::Tensor CemPlanner::candidates(int iteration, const torch::Tensor& mean, const torch::Tensor& var) {
  const std::int64_t horizon = settings_.horizon;
  if (!icem_) {
    // Inside the bounds: no more than two standard deviations from either.
    const auto room = torch::minimum((mean - low_) / 2, (high_ - mean) / 2).square();
    const auto std = torch::minimum(room, var).sqrt();
    return mean + std * truncated_normal({settings_.population, horizon, action_dim_}, gen_, device_);
  }
  const auto shrunk = std::ceil(settings_.population * std::pow(settings_.population_decay, -iteration));
  const auto population = std::max<std::int64_t>(static_cast<std::int64_t>(shrunk), 2 * settings_.elites);
  const auto noise = coloured_noise(population, horizon, action_dim_, settings_.noise_exponent, gen_).to(device_);
  auto sequences = torch::clamp(mean + var.sqrt() * noise, low_, high_);
  return kept_.defined() ? torch::cat({sequences, kept_}) : sequences;
}

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
    const auto sequences = candidates(iteration, mean, var);
    auto values = paired_returns(start, sequences, step, blocks);
    values = torch::nan_to_num(values, -1e10, -1e10, -1e10);
    const auto [top, order] = values.topk(settings_.elites);
    const auto elite = sequences.index_select(0, order);
    mean = alpha * mean + (1 - alpha) * elite.mean(0);
    var = alpha * var + (1 - alpha) * elite.var(0, /*unbiased=*/false);
    best_return_ = top[0].item<double>();
    elite_return_ = top.mean().item<double>();
    if (icem_) {
      const auto keep = static_cast<std::int64_t>(std::ceil(settings_.keep_elites * settings_.elites));
      kept_ = keep > 0 ? elite.narrow(0, 0, keep) : torch::Tensor();  // best first (topk's order)
    }
  }
  // The kept elites, one step on, start the next env step's first iteration.
  if (kept_.defined())
    kept_ = torch::cat({kept_.narrow(1, 1, horizon - 1), middle.unsqueeze(0).expand({kept_.size(0), 1, action_dim_})},
                       1);
  mean_ = mean;
  const auto first = torch::clamp(mean[0], low_, high_).to(torch::kCPU, torch::kFloat64).contiguous();
  return {first.data_ptr<double>(), first.data_ptr<double>() + action_dim_};
}

torch::Tensor CemPlanner::paired_returns(const torch::Tensor& obs, const torch::Tensor& sequences,
                                         const ParticleStep& step, int blocks) {
  const std::int64_t first = (sequences.size(0) + 1) / 2;
  torch::Tensor head, tail;
  PairedWork both(worker_, device_.is_cpu());
  both([&] { head = returns(obs, sequences.narrow(0, 0, first), step, blocks, particle_gens_[0]); },
       [&] {
         tail = returns(obs, sequences.narrow(0, first, sequences.size(0) - first), step, blocks, particle_gens_[1]);
       });
  return torch::cat({head, tail});
}

torch::Tensor CemPlanner::returns(const torch::Tensor& obs, const torch::Tensor& sequences, const ParticleStep& step,
                                  int blocks, torch::Generator& gen) const {
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
    const ParticleStepResult next = step(state, action, gen);
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
  archive.write("kept", kept_.defined() ? kept_.to(torch::kCPU) : torch::empty({0}));
  archive.write("gen", gen_.get_state());
  archive.write("particle_gen0", particle_gens_[0].get_state());
  archive.write("particle_gen1", particle_gens_[1].get_state());
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
  const auto kept = read_tensor(archive, "kept", "the planner");
  if (kept.numel() == 0) {
    kept_ = torch::Tensor();
  } else if (kept.dim() != 3 || kept.size(1) != settings_.horizon || kept.size(2) != action_dim_) {
    fail("the checkpoint's kept elites have shape {}, this planner's are [K, {}, {}]", shape_of(kept),
         settings_.horizon, action_dim_);
  } else {
    kept_ = kept.to(device_, torch::kFloat32);
  }
  gen_.set_state(read_tensor(archive, "gen", "the planner"));
  particle_gens_[0].set_state(read_tensor(archive, "particle_gen0", "the planner"));
  particle_gens_[1].set_state(read_tensor(archive, "particle_gen1", "the planner"));
}

}  // namespace tom::agents
