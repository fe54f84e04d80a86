#include "tom/agents/sac.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/ranges.h>

#include "tom/agents/squashed_gaussian.hpp"
#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"
#include "tom/core/worker_thread.hpp"

namespace tom::agents {
namespace {

std::vector<std::int64_t> layer_sizes(std::int64_t in, const SacSettings& s, std::int64_t out) {
  std::vector<std::int64_t> sizes{in};
  for (int l = 0; l < s.hidden_layers; ++l) sizes.push_back(s.hidden_size);
  sizes.push_back(out);
  return sizes;
}

void check_matrix(const torch::Tensor& t, std::int64_t rows, std::int64_t cols, const char* what) {
  if (!t.defined() || t.dim() != 2 || (rows >= 0 && t.size(0) != rows) || t.size(1) != cols)
    fail("SAC: {} must have shape [{}, {}], got {}", what, rows >= 0 ? std::to_string(rows) : "batch", cols,
         shape_of(t));
}

// -sum log(half-range): log pi of the action in the task's units, less log pi of the unit action.
double action_units_shift(const std::vector<double>& low, const std::vector<double>& high) {
  double shift = 0.0;
  for (std::size_t i = 0; i < low.size() && i < high.size(); ++i) shift -= std::log(0.5 * (high[i] - low[i]));
  return shift;
}

void check_vector(const torch::Tensor& t, std::int64_t rows, const char* what) {
  if (!t.defined() || t.dim() != 1 || t.size(0) != rows)
    fail("SAC: {} must have shape [{}], got {}", what, rows, shape_of(t));
}

}  // namespace

// Buffers of update() for one batch size, allocated once.
struct Sac::Workspace {
  Workspace(const Sac& sac, std::int64_t batch)
      : batch(batch),
        next_policy(sac.policy_, batch),
        critic1(sac.critic1_, batch),
        critic2(sac.critic2_, batch) {
    const auto options = sac.policy_.parameters().options();
    const std::int64_t half = batch / 2;
    policy_rows = half > 0 ? std::vector<Rows>{{0, half}, {half, batch - half}} : std::vector<Rows>{{0, batch}};
    for (const auto& [start, rows] : policy_rows) {
      policy.emplace_back(sac.policy_, rows);
      policy_grads.push_back(torch::empty({sac.policy_.num_parameters()}, options));
    }
    policy_grad = policy.size() == 1 ? policy_grads[0] : torch::empty({sac.policy_.num_parameters()}, options);
    critic_in = torch::empty({batch, sac.obs_dim_ + sac.action_dim_}, options);
    policy_grad_out = torch::empty({batch, 2 * sac.action_dim_}, options);
    critic1_grad = torch::empty({sac.critic1_.num_parameters()}, options);
    critic2_grad = torch::empty({sac.critic2_.num_parameters()}, options);
    noise_cpu = torch::empty({batch, sac.action_dim_}, torch::kFloat32);
    next_noise_cpu = torch::empty({batch, sac.action_dim_}, torch::kFloat32);
  }
  using Rows = std::pair<std::int64_t, std::int64_t>;  // {start, count}
  std::int64_t batch;
  // The policy step's policy pass in two halves of the batch (one part for a single
  // transition), whose parameter gradients are summed into policy_grad, so that its
  // backward pass runs on two threads too.
  std::vector<nn::FlatMlpTape> policy;
  std::vector<Rows> policy_rows;
  std::vector<torch::Tensor> policy_grads;
  // The TD target's policy pass (run at the same time); the critic tapes also serve the
  // target critics.
  nn::FlatMlpTape next_policy, critic1, critic2;
  // critic_in is read by both critics at once, and written only between their passes.
  torch::Tensor critic_in, policy_grad_out, policy_grad, critic1_grad, critic2_grad, noise_cpu, next_noise_cpu;
};

Sac::Sac(const SacSettings& settings, int obs_dim, int action_dim, std::vector<double> low, std::vector<double> high,
         torch::Device device, std::uint64_t seed)
    : settings_(settings),
      obs_dim_(obs_dim),
      action_dim_(action_dim),
      device_(device),
      low_(std::move(low)),
      high_(std::move(high)),
      target_entropy_(settings.auto_target_entropy ? -static_cast<double>(action_dim) : settings.target_entropy),
      log_prob_shift_(settings.entropy_units == "action" ? action_units_shift(low_, high_) : 0.0),
      gen_(at::make_generator<at::CPUGeneratorImpl>(seed)),
      policy_(layer_sizes(obs_dim, settings, 2 * std::int64_t{action_dim}), gen_, nn::init_from_name(settings.init),
              device),
      critic1_(layer_sizes(obs_dim + action_dim, settings, 1), gen_, nn::init_from_name(settings.init), device),
      critic2_(layer_sizes(obs_dim + action_dim, settings, 1), gen_, nn::init_from_name(settings.init), device),
      target1_(critic1_.sizes(), gen_, nn::init_from_name(settings.init), device),
      target2_(critic2_.sizes(), gen_, nn::init_from_name(settings.init), device),
      policy_adam_(policy_.num_parameters(), settings.actor_lr, device),
      critic1_adam_(critic1_.num_parameters(), settings.critic_lr, device),
      critic2_adam_(critic2_.num_parameters(), settings.critic_lr, device),
      alpha_adam_(1, settings.alpha_lr, device) {
  if (obs_dim < 1 || action_dim < 1)
    fail("SAC: dimensions must be positive (got obs {}, action {})", obs_dim, action_dim);
  if (low_.size() != static_cast<std::size_t>(action_dim) || high_.size() != static_cast<std::size_t>(action_dim))
    fail("SAC: action bounds have {} and {} entries, expected {}", low_.size(), high_.size(), action_dim);
  for (int i = 0; i < action_dim; ++i)
    if (!std::isfinite(low_[i]) || !std::isfinite(high_[i]) || !(low_[i] < high_[i]))
      fail("SAC: action bound {} must be finite with low < high (got [{}, {}])", i, low_[i], high_[i]);
  if (!(settings.init_alpha > 0) || !std::isfinite(settings.init_alpha))
    fail("SAC: init_alpha must be positive (got {})", settings.init_alpha);
  if (!std::isfinite(target_entropy_)) fail("SAC: target_entropy must be finite (got {})", target_entropy_);
  if (settings.entropy_units != "unit" && settings.entropy_units != "action")
    fail("SAC: entropy_units must be unit or action (got '{}')", settings.entropy_units);
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  const auto lo = torch::tensor(low_, options), hi = torch::tensor(high_, options);
  action_scale_ = ((hi - lo) / 2).to(device, torch::kFloat32);
  action_offset_ = ((hi + lo) / 2).to(device, torch::kFloat32);
  target1_.set_parameters(critic1_.parameters());
  target2_.set_parameters(critic2_.parameters());
  log_alpha_ = torch::full({1}, std::log(settings.init_alpha), torch::TensorOptions().device(device));
  single_obs_ = torch::empty({1, obs_dim}, torch::kFloat32);
  single_noise_ = torch::empty({1, action_dim}, torch::kFloat32);
}

Sac::~Sac() = default;

double Sac::alpha() const { return std::exp(log_alpha_.item<double>()); }

torch::Tensor Sac::normalise_action(const torch::Tensor& action) const {
  return (action - action_offset_) / action_scale_;
}

torch::Tensor Sac::critic_input(const torch::Tensor& obs, const torch::Tensor& action) const {
  check_matrix(obs, -1, obs_dim_, "observations");
  check_matrix(action, obs.size(0), action_dim_, "actions");
  return torch::cat({obs.to(device_, torch::kFloat32), normalise_action(action.to(device_, torch::kFloat32))}, 1);
}

torch::Tensor Sac::act(const torch::Tensor& obs, bool deterministic) {
  if (deterministic) return mean_actions(obs);
  check_matrix(obs, -1, obs_dim_, "observations");
  torch::NoGradGuard no_grad;
  const auto head = policy_.forward(obs.to(device_, torch::kFloat32));
  const auto noise = torch::randn({obs.size(0), action_dim_}, gen_).to(device_);
  return action_offset_ + action_scale_ * squashed_gaussian(head, noise).action;
}

torch::Tensor Sac::mean_actions(const torch::Tensor& obs) const {
  check_matrix(obs, -1, obs_dim_, "observations");
  torch::NoGradGuard no_grad;
  const auto head = policy_.forward(obs.to(device_, torch::kFloat32));
  return action_offset_ + action_scale_ * torch::tanh(head.narrow(1, 0, action_dim_));
}

std::vector<double> Sac::act(std::span<const double> obs, bool deterministic) {
  if (obs.size() != static_cast<std::size_t>(obs_dim_))
    fail("SAC: observation has {} entries, expected {}", obs.size(), obs_dim_);
  torch::NoGradGuard no_grad;
  float* row = single_obs_.data_ptr<float>();
  for (int i = 0; i < obs_dim_; ++i) {
    if (!std::isfinite(obs[i])) fail("SAC: observation entry {} is not finite ({})", i, obs[i]);
    row[i] = static_cast<float>(obs[i]);
  }
  if (!single_tape_) single_tape_ = std::make_unique<nn::FlatMlpTape>(policy_, 1);
  const auto head = single_tape_->forward(policy_, device_.is_cpu() ? single_obs_ : single_obs_.to(device_))
                        .to(torch::kCPU);
  if (!deterministic) single_noise_.normal_(0.0, 1.0, gen_);
  const float* out = head.data_ptr<float>();
  const float* noise = single_noise_.data_ptr<float>();
  std::vector<double> action(action_dim_);
  for (int j = 0; j < action_dim_; ++j) {
    double u = out[j];
    if (!deterministic) u += std::exp(std::clamp<double>(out[action_dim_ + j], kLogStdMin, kLogStdMax)) * noise[j];
    action[j] = 0.5 * (high_[j] + low_[j]) + 0.5 * (high_[j] - low_[j]) * std::tanh(u);
  }
  return action;
}

ActionSample Sac::sample_actions(const torch::Tensor& obs, torch::Generator& gen) const {
  check_matrix(obs, -1, obs_dim_, "observations");
  const auto head = policy_.forward(obs.to(device_, torch::kFloat32));
  const auto noise = torch::randn({obs.size(0), action_dim_}, gen).to(device_);
  const auto s = squashed_gaussian(head, noise);
  return {action_offset_ + action_scale_ * s.action, s.log_prob};
}

torch::Tensor Sac::policy_parameters() const { return policy_.parameters().detach().clone(); }

GaussianHead Sac::policy_gaussian(const torch::Tensor& obs, const torch::Tensor& parameters) const {
  check_matrix(obs, -1, obs_dim_, "observations");
  if (!parameters.defined() || parameters.dim() != 1 || parameters.numel() != policy_.num_parameters())
    fail("SAC: a policy snapshot has {} parameters, this policy {}",
         parameters.defined() ? parameters.numel() : 0, policy_.num_parameters());
  const auto params = parameters.to(device_, torch::kFloat32);
  const torch::Tensor h = nn::mlp_forward(policy_.layer_views(params), obs.to(device_, torch::kFloat32));
  return {h.narrow(1, 0, action_dim_), h.narrow(1, action_dim_, action_dim_).clamp(kLogStdMin, kLogStdMax)};
}

TwinQ Sac::q_values(const torch::Tensor& obs, const torch::Tensor& action) const {
  const auto x = critic_input(obs, action);
  return {critic1_.forward(x).squeeze(1), critic2_.forward(x).squeeze(1)};
}

TwinQ Sac::target_q_values(const torch::Tensor& obs, const torch::Tensor& action) const {
  const auto x = critic_input(obs, action);
  return {target1_.forward(x).squeeze(1), target2_.forward(x).squeeze(1)};
}

// One update's shared state and its steps, in the order update() runs them. Each step
// reads and writes the Workspace's buffers; `both` runs two independent computations at
// the same time with 2+ threads (tom::PairedWork), with the same results as with 1.
struct Sac::UpdateStep {
  Sac& sac;
  Workspace& ws;
  PairedWork both;
  torch::Tensor obs, next_obs, reward, terminated, action;
  double alpha;
  double scale;  // d(mean)/d(element) over the batch
  torch::Tensor obs_part, action_part;  // the critic input's two column blocks

  UpdateStep(Sac& sac, const data::Batch& batch)
      : sac(sac), ws(*sac.workspace_), both(sac.worker_, sac.device_.is_cpu()) {
    const auto as_input = [&](const torch::Tensor& t) { return t.to(sac.device_, torch::kFloat32); };
    obs = as_input(batch.obs);
    next_obs = as_input(batch.next_obs);
    reward = as_input(batch.reward);
    terminated = as_input(batch.terminated);
    action = sac.normalise_action(as_input(batch.action));
    alpha = std::exp(sac.log_alpha_.item<double>());
    scale = 1.0 / static_cast<double>(obs.size(0));
    obs_part = ws.critic_in.narrow(1, 0, sac.obs_dim_);
    action_part = ws.critic_in.narrow(1, sac.obs_dim_, sac.action_dim_);
  }

  // Policy samples for the TD target (at s') and for the policy step (at s, with the
  // current policy: it does not depend on the critic step). Noise drawn in this order.
  std::pair<SquashedSample, SquashedSample> sample_policy() {
    ws.next_noise_cpu.normal_(0.0, 1.0, sac.gen_);
    ws.noise_cpu.normal_(0.0, 1.0, sac.gen_);
    const auto on_device = [&](const torch::Tensor& t) { return sac.device_.is_cpu() ? t : t.to(sac.device_); };
    const auto next_noise = on_device(ws.next_noise_cpu), noise = on_device(ws.noise_cpu);
    const auto policy_forward = [&](const torch::Tensor& x) {
      std::vector<torch::Tensor> heads;
      for (std::size_t p = 0; p < ws.policy.size(); ++p)
        heads.push_back(
            ws.policy[p].forward(sac.policy_, x.narrow(0, ws.policy_rows[p].first, ws.policy_rows[p].second)));
      return torch::cat(heads);
    };
    SquashedSample pi, next;
    both([&] { pi = squashed_gaussian(policy_forward(obs), noise); },
         [&] { next = squashed_gaussian(ws.next_policy.forward(sac.policy_, next_obs), next_noise); });
    return {pi, next};
  }

  // y = r + gamma (1 - terminated) (min target Q(s', a') - alpha log pi(a'|s')), log pi in
  // entropy_units.
  torch::Tensor td_target(const SquashedSample& next) {
    obs_part.copy_(next_obs);
    action_part.copy_(next.action);
    torch::Tensor next_q1, next_q2;
    both([&] { next_q1 = ws.critic1.forward(sac.target1_, ws.critic_in); },
         [&] { next_q2 = ws.critic2.forward(sac.target2_, ws.critic_in); });
    const auto soft_value = torch::min(next_q1, next_q2).squeeze(1) - alpha * (next.log_prob + sac.log_prob_shift_);
    return reward + sac.settings_.gamma * (1.0 - terminated) * soft_value;
  }

  // Each critic steps on its mean squared TD error, then its target moves by Polyak
  // averaging (targets are not read again in this update). Returns the summed loss.
  double critic_step(const torch::Tensor& target) {
    obs_part.copy_(obs);
    action_part.copy_(action);
    const auto step = [&](nn::FlatMlpTape& tape, nn::FlatMlp& critic, nn::FlatAdam& adam, nn::FlatMlp& target_net,
                          const torch::Tensor& grad, torch::Tensor& loss) {
      const auto td = tape.forward(critic, ws.critic_in).squeeze(1) - target;
      loss = td.square().mean();
      // A clamped loss (PyTorch's clamp_max) passes no gradient above the clamp; Adam
      // still steps on its moments, as it does there.
      const double clamp = sac.settings_.critic_loss_clamp;
      if (clamp > 0 && loss.item<double>() > clamp)
        grad.zero_();
      else
        tape.backward(critic, (2.0 * scale * td).unsqueeze(1), grad, false);
      adam.step(critic.parameters(), grad);
      target_net.parameters().lerp_(critic.parameters(), sac.settings_.tau);
    };
    torch::Tensor loss1, loss2;
    both([&] { step(ws.critic1, sac.critic1_, sac.critic1_adam_, sac.target1_, ws.critic1_grad, loss1); },
         [&] { step(ws.critic2, sac.critic2_, sac.critic2_adam_, sac.target2_, ws.critic2_grad, loss2); });
    return (loss1 + loss2).item<double>();
  }

  // The policy steps on mean(alpha log pi(a|s) - min Q(s, a)) with the reparameterised
  // sample pi, through the updated critics; only their action-input gradient is formed.
  // Returns the loss and the mean log pi (entropy_units).
  std::pair<double, double> policy_step(const SquashedSample& pi) {
    action_part.copy_(pi.action);
    torch::Tensor q1, q2;
    both([&] { q1 = ws.critic1.forward(sac.critic1_, ws.critic_in); },
         [&] { q2 = ws.critic2.forward(sac.critic2_, ws.critic_in); });
    const auto first_is_min = (q1 <= q2).to(torch::kFloat32);
    const double log_prob_mean = pi.log_prob.mean().item<double>() + sac.log_prob_shift_;
    const double loss = alpha * log_prob_mean - torch::min(q1, q2).mean().item<double>();
    torch::Tensor grad_q1, grad_q2;
    both([&] { grad_q1 = ws.critic1.backward(sac.critic1_, -scale * first_is_min, {}, true); },
         [&] { grad_q2 = ws.critic2.backward(sac.critic2_, -scale * (1.0 - first_is_min), {}, true); });
    const auto obs_dim = sac.obs_dim_, action_dim = sac.action_dim_;
    const auto grad_action = grad_q1.narrow(1, obs_dim, action_dim) + grad_q2.narrow(1, obs_dim, action_dim);
    squashed_gaussian_backward(pi, grad_action, alpha * scale, ws.policy_grad_out);
    const auto policy_backward = [&](std::size_t p) {
      const auto [start, rows] = ws.policy_rows[p];
      ws.policy[p].backward(sac.policy_, ws.policy_grad_out.narrow(0, start, rows), ws.policy_grads[p], false);
    };
    if (ws.policy.size() == 2) {
      both([&] { policy_backward(0); }, [&] { policy_backward(1); });
      at::add_out(ws.policy_grad, ws.policy_grads[0], ws.policy_grads[1]);
    } else {
      policy_backward(0);  // into policy_grad
    }
    sac.policy_adam_.step(sac.policy_.parameters(), ws.policy_grad);
    return {loss, log_prob_mean};
  }

  // The temperature steps on -log(alpha) (mean log pi + target entropy), whose gradient
  // is entropy - target: alpha grows while the policy's entropy is below the target.
  double temperature_step(double log_prob_mean) {
    if (!sac.settings_.learn_alpha) return 0.0;
    const double drive = log_prob_mean + sac.target_entropy_;
    sac.alpha_adam_.step(sac.log_alpha_, torch::full({1}, -drive, sac.log_alpha_.options()));
    return -std::log(alpha) * drive;
  }
};

SacStats Sac::update(const data::Batch& batch) {
  const std::int64_t n = batch.obs.defined() && batch.obs.dim() == 2 ? batch.obs.size(0) : -1;
  check_matrix(batch.obs, -1, obs_dim_, "batch observations");
  check_matrix(batch.action, n, action_dim_, "batch actions");
  check_vector(batch.reward, n, "batch rewards");
  check_matrix(batch.next_obs, n, obs_dim_, "batch next observations");
  check_vector(batch.terminated, n, "batch terminated flags");
  torch::NoGradGuard no_grad;
  if (!workspace_ || workspace_->batch != n) workspace_ = std::make_unique<Workspace>(*this, n);

  UpdateStep step(*this, batch);
  const auto [pi, next] = step.sample_policy();
  const double q_loss = step.critic_step(step.td_target(next));
  const auto [policy_loss, log_prob_mean] = step.policy_step(pi);
  const double alpha_loss = step.temperature_step(log_prob_mean);

  ++updates_;
  if (!std::isfinite(q_loss) || !std::isfinite(policy_loss))
    fail("SAC update {} diverged: critic loss {}, policy loss {}", updates_, q_loss, policy_loss);
  return {q_loss, policy_loss, step.alpha, alpha_loss, -log_prob_mean};
}

void Sac::save(torch::serialize::OutputArchive& archive) const {
  const auto number = [](std::int64_t v) { return torch::tensor(v, torch::kInt64); };
  archive.write("obs_dim", number(obs_dim_));
  archive.write("action_dim", number(action_dim_));
  archive.write("hidden_size", number(settings_.hidden_size));
  archive.write("hidden_layers", number(settings_.hidden_layers));
  archive.write("action_low", torch::tensor(low_, torch::kFloat64));
  archive.write("action_high", torch::tensor(high_, torch::kFloat64));
  archive.write("policy", policy_.parameters());
  archive.write("critic1", critic1_.parameters());
  archive.write("critic2", critic2_.parameters());
  archive.write("target1", target1_.parameters());
  archive.write("target2", target2_.parameters());
  policy_adam_.save(archive, "policy_adam");
  critic1_adam_.save(archive, "critic1_adam");
  critic2_adam_.save(archive, "critic2_adam");
  alpha_adam_.save(archive, "alpha_adam");
  archive.write("log_alpha", log_alpha_);
  archive.write("updates", number(updates_));
  archive.write("generator", gen_.get_state());
}

void Sac::load(torch::serialize::InputArchive& archive) {
  const auto read_number = [&](const std::string& key) {
    const auto t = read_tensor(archive, key, "SAC");
    if (t.numel() != 1) fail("SAC checkpoint entry '{}' is not a single number", key);
    return t.item<std::int64_t>();
  };
  const auto expect = [&](const std::string& key, std::int64_t ours) {
    const std::int64_t saved = read_number(key);
    if (saved != ours) fail("SAC checkpoint has {} = {}, this agent has {}", key, saved, ours);
  };
  expect("obs_dim", obs_dim_);
  expect("action_dim", action_dim_);
  expect("hidden_size", settings_.hidden_size);
  expect("hidden_layers", settings_.hidden_layers);
  for (auto [key, ours] : {std::pair{"action_low", &low_}, std::pair{"action_high", &high_}}) {
    const auto saved = read_tensor(archive, key, "SAC").to(torch::kFloat64).contiguous();
    const std::vector<double> values(saved.data_ptr<double>(), saved.data_ptr<double>() + saved.numel());
    if (values != *ours) fail("SAC checkpoint has {} [{}], this task has [{}]", key, fmt::join(values, ", "),
                              fmt::join(*ours, ", "));
  }
  const auto read_params = [&](const std::string& key, const nn::FlatMlp& net) {
    const auto t = read_tensor(archive, key, "SAC");
    if (t.dim() != 1 || t.numel() != net.num_parameters())
      fail("SAC checkpoint entry '{}' has {} parameters, this network has {}", key, t.numel(), net.num_parameters());
    return t;
  };
  const auto policy = read_params("policy", policy_), critic1 = read_params("critic1", critic1_),
             critic2 = read_params("critic2", critic2_), target1 = read_params("target1", target1_),
             target2 = read_params("target2", target2_);
  const auto log_alpha = read_tensor(archive, "log_alpha", "SAC");
  if (log_alpha.numel() != 1) fail("SAC checkpoint entry 'log_alpha' is not a single number");
  const auto generator_state = read_tensor(archive, "generator", "SAC");
  const auto updates = read_number("updates");
  // Shapes and bounds are checked before the agent changes.
  policy_adam_.load(archive, "policy_adam");
  critic1_adam_.load(archive, "critic1_adam");
  critic2_adam_.load(archive, "critic2_adam");
  alpha_adam_.load(archive, "alpha_adam");
  policy_.set_parameters(policy);
  critic1_.set_parameters(critic1);
  critic2_.set_parameters(critic2);
  target1_.set_parameters(target1);
  target2_.set_parameters(target2);
  torch::NoGradGuard no_grad;
  log_alpha_.copy_(log_alpha.reshape({1}));
  gen_.set_state(generator_state);
  updates_ = updates;
}

}  // namespace tom::agents
