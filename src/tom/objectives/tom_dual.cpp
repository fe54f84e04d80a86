#include "tom/objectives/tom_dual.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tom/core/error.hpp"

namespace tom::objectives {
namespace {

constexpr std::int64_t kWeightChunk = 50000;

// Concatenates each state with each of its K next actions: [K*B, S+A], rows k-major.
torch::Tensor state_action_rows(const torch::Tensor& states, const torch::Tensor& actions) {
  const auto k = actions.size(0), b = actions.size(1);
  return torch::cat({states.unsqueeze(0).expand({k, b, states.size(1)}), actions}, 2)
      .reshape({k * b, states.size(1) + actions.size(2)});
}

// The part of U(s,a) that conjugate-u takes from Q instead of learning: gamma (1-d) c, with
// c Q's output bias (see TomDual::step).
torch::Tensor carried_constant(double gamma, const torch::Tensor& done, const torch::Tensor& q_output_bias) {
  return gamma * (1.0 - done) * q_output_bias;
}

void check_finite(const torch::Tensor& t, const char* name) {
  if (!torch::isfinite(t).all().item<bool>()) fail("TOM dual: {} contains NaN or inf", name);
}

}  // namespace

void TomDualSettings::check() {
  check_settings("tom_dual", *this);
}

DualNetImpl::DualNetImpl(std::int64_t input_dim, int hidden, int layers) {
  std::int64_t in = input_dim;
  for (int i = 0; i < layers; ++i) {
    layers_.push_back(register_module("hidden" + std::to_string(i),
                                      torch::nn::Linear(torch::nn::LinearOptions(in, hidden))));
    in = hidden;
  }
  layers_.push_back(
      register_module("out", torch::nn::Linear(torch::nn::LinearOptions(in, 1).bias(false))));
  output_bias_ = register_parameter("output_bias", torch::zeros({1}));
}

torch::Tensor DualNetImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = x;
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = torch::relu(layers_[i]->forward(h));
  return (layers_.back()->forward(h) + output_bias_).squeeze(1);
}

torch::Tensor chi2_conjugate(const torch::Tensor& x) { return 0.5 * x * x + x; }

torch::Tensor chi2_conjugate_derivative(const torch::Tensor& x) { return torch::relu(x + 1.0); }

torch::Tensor divergence_generator(const torch::Tensor& w, const std::string& divergence) {
  if (divergence == "chi2") return 0.5 * (w - 1.0).square();
  if (divergence == "kl") return torch::xlogy(w, w) - w + 1.0;
  fail("TOM dual: unknown divergence '{}' (valid: chi2, kl)", divergence);
}

torch::Tensor clip_and_normalise(const torch::Tensor& w, double clip_max, bool normalise) {
  if (w.dim() != 1 || w.numel() == 0) fail("TOM weights: weights must be a non-empty vector");
  if (!(clip_max > 0.0)) fail("TOM weights: clip_max must be positive (got {})", clip_max);
  torch::Tensor clipped = w.clamp(0.0, clip_max);
  if (!normalise) return clipped;
  const double mean = clipped.mean().item<double>();
  if (!(mean > 0.0)) fail("TOM weights: every weight is zero, cannot normalise");
  return clipped / mean;
}

torch::Tensor weights_from_residuals(const torch::Tensor& e, const std::string& divergence,
                                     double clip_max, bool normalise) {
  if (e.dim() != 1 || e.numel() == 0) fail("TOM weights: residuals must be a non-empty vector");
  torch::Tensor w;
  if (divergence == "chi2") {
    w = chi2_conjugate_derivative(e);
  } else if (divergence == "kl") {
    // exp(e) is only defined up to scale by the dual (log E[exp e] is shift invariant).
    w = torch::exp(e - e.max());
    w = w / w.mean();
  } else {
    fail("TOM weights: unknown divergence '{}' (valid: chi2, kl)", divergence);
  }
  return clip_and_normalise(w, clip_max, normalise);
}

TomDual::TomDual(TomDualSettings settings, std::int64_t state_dim, std::int64_t action_dim,
                 torch::Device device)
    : settings_(std::move(settings)),
      state_dim_(state_dim),
      action_dim_(action_dim),
      device_(device),
      q_(nullptr),
      q_avg_(nullptr) {
  settings_.check();
  if (state_dim < 1 || action_dim < 1)
    fail("TOM dual: state and action dimensions must be positive (got {}, {})", state_dim,
         action_dim);
  const auto input = state_dim + action_dim;
  auto make_optimizer = [&](DualNet& net, double bias_lr) {
    // Weight decay on the layer weights only; the free output bias stays unpenalised.
    std::vector<torch::Tensor> decayed, free;
    for (const auto& p : net->parameters())
      (p.is_same(net->output_bias()) ? free : decayed).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decayed, std::make_unique<torch::optim::AdamOptions>(
                                     torch::optim::AdamOptions(settings_.lr)
                                         .weight_decay(settings_.l2)));
    groups.emplace_back(free, std::make_unique<torch::optim::AdamOptions>(bias_lr));
    return std::make_unique<torch::optim::Adam>(groups,
                                                torch::optim::AdamOptions(settings_.lr));
  };
  auto make_pair = [&](DualNet& online, DualNet& averaged) {
    online = DualNet(input, settings_.hidden, settings_.layers);
    averaged = DualNet(input, settings_.hidden, settings_.layers);
    online->to(device_);
    averaged->to(device_);
    torch::NoGradGuard no_grad;
    auto src = online->parameters(), dst = averaged->parameters();
    for (std::size_t i = 0; i < src.size(); ++i) {
      dst[i].copy_(src[i]);
      dst[i].set_requires_grad(false);
      online_params_.push_back(src[i]);
      averaged_params_.push_back(dst[i]);
    }
  };
  make_pair(q_, q_avg_);
  if (settings_.form == "conjugate-u") {
    // U leaves Q's constant to Q's output bias (see step()), so the bias must carry it:
    // Q* is about -chi2/(1-gamma) plus O(1) structure, and at the layers' rate the bias would
    // need ~1/((1-gamma) lr) steps to get there. Its effect on e is scaled by 1-gamma, so
    // the faster rate adds no more noise to the weights than the other parameters do.
    q_opt_ = make_optimizer(q_, settings_.lr / (1.0 - settings_.gamma));
    make_pair(u_, u_avg_);
    u_opt_ = make_optimizer(u_, settings_.lr);
  } else {
    q_opt_ = make_optimizer(q_, settings_.lr);
    if (settings_.form == "minimax") {
      make_pair(w_, w_avg_);
      w_opt_ = make_optimizer(w_, settings_.lr);
    }
  }
  for (auto* opt : optimizers())
    for (auto& group : opt->param_groups())
      base_lrs_.push_back(static_cast<torch::optim::AdamOptions&>(group.options()).lr());
}

torch::Tensor TomDual::ratio(const DualNet& w_net, const torch::Tensor& sa) const {
  // softplus(0) = log 2: a freshly made ratio network starts near w = 0.7, not at 0.
  return torch::softplus(w_net.ptr()->forward(sa));
}

void TomDual::check_batch(const ReplayBatch& b, std::int64_t count) const {
  auto expect = [&](const torch::Tensor& t, std::vector<std::int64_t> shape, const char* name) {
    if (!t.defined() || t.sizes() != torch::IntArrayRef(shape))
      fail("TOM dual: replay {} has shape {} (expected {})", name,
           t.defined() ? c10::str(t.sizes()) : "undefined",
           c10::str(torch::IntArrayRef(shape)));
  };
  expect(b.s, {count, state_dim_}, "s");
  expect(b.a, {count, action_dim_}, "a");
  expect(b.r, {count}, "r");
  expect(b.s_next, {count, state_dim_}, "s_next");
  expect(b.done, {count}, "done");
}

torch::Tensor TomDual::check_next(const NextActions& next, std::int64_t rows,
                                  const char* where) const {
  const auto& a = next.actions;
  if (!a.defined() || a.dim() != 3 || a.size(1) != rows || a.size(2) != action_dim_ ||
      a.size(0) < 1)
    fail("TOM dual: {} next actions have shape {} (expected [K, {}, {}])", where,
         a.defined() ? c10::str(a.sizes()) : "undefined", rows, action_dim_);
  if (!next.probs.defined())
    return torch::full({a.size(0), rows}, 1.0 / static_cast<double>(a.size(0)), a.options());
  if (next.probs.sizes() != torch::IntArrayRef({a.size(0), rows}))
    fail("TOM dual: {} next-action probabilities have shape {} (expected [{}, {}])", where,
         c10::str(next.probs.sizes()), a.size(0), rows);
  return next.probs;
}

double TomDual::step(const DualData& data) {
  const std::int64_t b = settings_.batch;
  const double gamma = settings_.gamma;
  const bool kl = settings_.divergence == "kl";

  ReplayBatch batch = data.sample_replay(b);
  check_batch(batch, b);
  torch::Tensor s0 = data.sample_initial_states(b);
  if (s0.sizes() != torch::IntArrayRef({b, state_dim_}))
    fail("TOM dual: initial states have shape {} (expected [{}, {}])", c10::str(s0.sizes()),
         b, state_dim_);
  // One policy call and one Q forward cover the initial and the next states.
  const torch::Tensor starts_and_nexts = torch::cat({s0, batch.s_next});
  const NextActions next = data.sample_next_actions(starts_and_nexts, settings_.next_actions);
  const torch::Tensor probs = check_next(next, 2 * b, "sampled");
  const auto k = next.actions.size(0);

  const torch::Tensor sa = torch::cat({batch.s, batch.a}, 1);
  const torch::Tensor q_all =
      q_->forward(torch::cat({sa, state_action_rows(starts_and_nexts, next.actions)}));
  const torch::Tensor q_sa = q_all.narrow(0, 0, b);
  const torch::Tensor values = (q_all.narrow(0, b, k * 2 * b).view({k, 2 * b}) * probs).sum(0);
  const torch::Tensor v0 = values.narrow(0, 0, b);
  const torch::Tensor discounted_next = gamma * (1.0 - batch.done) * values.narrow(0, b, b);
  const torch::Tensor initial_term = (1.0 - gamma) * v0.mean();

  torch::Tensor loss, reported;
  if (settings_.form == "conjugate") {
    const torch::Tensor e = batch.r + discounted_next - q_sa;
    loss = initial_term + (kl ? torch::logsumexp(e, 0) - std::log(static_cast<double>(b))
                              : chi2_conjugate(e).mean());
  } else if (settings_.form == "minimax") {
    // The Lagrangian is linear in e, so sampled s' and a' give unbiased gradients. Q descends
    // it with w held fixed; w ascends it with e held fixed (simultaneous steps).
    const torch::Tensor e = batch.r + discounted_next - q_sa;
    const torch::Tensor w = ratio(w_, sa);
    const torch::Tensor q_loss = initial_term + (w.detach() * e).mean();
    const torch::Tensor w_gain = (w * e.detach() - divergence_generator(w, settings_.divergence)).mean();
    w_opt_->zero_grad();
    // Each network's parameters only reach one of the two terms.
    loss = q_loss - w_gain;
    reported = initial_term + w_gain;  // the Lagrangian's value
  } else {
    // U(s,a) regresses onto the sampled backup r + gamma (1-d) Q(s',a'), so U - Q is the
    // residual e with the conditional expectation inside. U and Q are both about
    // -chi2/(1-gamma) and e is their O(1) difference, more precise than two separate networks
    // can match; so U takes Q's output bias c as given and its network u learns the rest:
    // U = gamma (1-d) c + u(s,a), u regressing onto r + gamma (1-d) (Q(s',a') - c).
    // Q's surrogate has gradient (1-gamma) dQ(s0) + f*'(e) (gamma (1-d) dQ(s',a') - dQ(s,a)).
    // For chi2, f*'(e) = e + 1 unclipped (the conjugate form's f*): it is linear in e, so U's
    // regression noise averages out; the clipped max(e+1, 0) would, by Jensen, push the
    // estimate of every small ratio to 0 (measured in docs/tom_weights.md).
    const torch::Tensor carried = carried_constant(gamma, batch.done, q_->output_bias().detach());
    const torch::Tensor u_sa = u_->forward(sa);
    const torch::Tensor target = (batch.r + discounted_next - carried).detach();
    const torch::Tensor u_loss = torch::mse_loss(u_sa, target);
    u_opt_->zero_grad();
    u_loss.backward();
    u_opt_->step();
    torch::Tensor w;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor e = u_sa + carried - q_sa;
      w = kl ? torch::softmax(e, 0) * static_cast<double>(b) : e + 1.0;
    }
    loss = initial_term + (w * (discounted_next - q_sa)).mean();
  }
  q_opt_->zero_grad();
  loss.backward();
  q_opt_->step();
  if (w_opt_) w_opt_->step();
  update_averages();
  ++steps_done_;
  return (reported.defined() ? reported : loss).item<double>();
}

std::vector<torch::optim::Adam*> TomDual::optimizers() const {
  std::vector<torch::optim::Adam*> all;
  for (const auto* opt : {&q_opt_, &u_opt_, &w_opt_})
    if (*opt) all.push_back(opt->get());
  return all;
}

void TomDual::set_lr_factor(double factor) {
  if (!(factor > 0.0) || !std::isfinite(factor))
    fail("TOM dual: learning-rate factor must be positive and finite (got {})", factor);
  std::size_t i = 0;
  for (auto* opt : optimizers())
    for (auto& group : opt->param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(base_lrs_.at(i++) * factor);
}

void TomDual::update_averages() {
  torch::NoGradGuard no_grad;
  const double blend = 1.0 - settings_.ema;
  for (std::size_t i = 0; i < online_params_.size(); ++i)
    averaged_params_[i].lerp_(online_params_[i], blend);
}

DualTrainReport TomDual::train(const DualData& data, int max_steps) {
  if (max_steps < 0) fail("TOM dual: steps must be non-negative (got {})", max_steps);
  if (!data.sample_initial_states || !data.sample_replay || !data.sample_next_actions)
    fail("TOM dual: DualData needs all three samplers");
  DualTrainReport report;
  if (max_steps == 0) return report;

  // The probe: fixed replay transitions (and next actions) whose weights each check compares.
  const ReplayBatch probe = data.sample_replay(settings_.probe_rows);
  check_batch(probe, settings_.probe_rows);
  const NextActions probe_next =
      needs_next_actions() ? data.sample_next_actions(probe.s_next, settings_.next_actions) : NextActions{};
  const bool scale_free = settings_.divergence == "kl" && settings_.form != "minimax";
  const auto probe_weights = [&] {
    torch::NoGradGuard no_grad;
    const torch::Tensor values = buffer_values(probe.s, probe.a, probe.r, probe.s_next, probe.done,
                                               probe_next.actions,
                                               needs_next_actions() ? check_next(probe_next, settings_.probe_rows, "probe")
                                                                    : torch::Tensor{});
    if (w_avg_) return values;
    return scale_free ? weights_from_residuals(values, "kl", std::numeric_limits<double>::infinity(), true)
                      : chi2_conjugate_derivative(values);
  };
  const auto diverged = [&](const std::string& what) {
    fail("TOM dual diverged after {} steps: {} (form {}, lr {}); lower the learning rate", steps_done_, what,
         settings_.form, settings_.lr);
  };

  torch::Tensor previous = probe_weights();
  double interval_loss = 0.0, previous_interval_loss = std::numeric_limits<double>::quiet_NaN();
  int interval_steps = 0;
  // converge schedule: the constant rate until `patience` checks in a row bring no 20% smaller
  // change (the weights have reached the noise floor of this rate), then an exponential anneal
  // to anneal_factor over twice as many steps as the constant phase took: the rarely sampled
  // entries settle last (docs/tom_weights.md). A third of the budget at most goes to the
  // constant phase.
  const bool converge = settings_.schedule == "converge";
  double best_change = std::numeric_limits<double>::infinity(), peak_change = 0.0;
  int checks_without_progress = 0, anneal_start = -1, anneal_steps = 0;
  const auto start_anneal = [&](int step) {
    anneal_start = step;
    anneal_steps = std::max(1, std::min(2 * step, max_steps - step));
  };
  for (int step = 0; step < max_steps; ++step) {
    if (converge && anneal_start < 0 && step >= max_steps / 3) start_anneal(step);
    if (anneal_start >= 0) {
      const double progress = std::min(1.0, static_cast<double>(step - anneal_start) / anneal_steps);
      set_lr_factor(std::pow(settings_.anneal_factor, progress));
    }
    const double loss = this->step(data);
    if (!std::isfinite(loss)) diverged(fmt::format("the loss is {}", loss));
    interval_loss += loss;
    ++interval_steps;
    const bool last = step + 1 == max_steps || (anneal_start >= 0 && step + 1 >= anneal_start + anneal_steps);
    if (interval_steps < settings_.check_every && !last) continue;

    const torch::Tensor w = probe_weights();
    if (!torch::isfinite(w).all().item<bool>()) diverged("a weight is not finite");
    report.steps = step + 1;
    report.weight_mean = w.mean().item<double>();
    // Orders of magnitude off: a dual short of convergence is nearer (the first fit of a
    // hopper run has a mean of 0.23 after its 1000 steps), a collapsed or exploding one further.
    if (!scale_free && !(report.weight_mean > 1e-3 && report.weight_mean < 1e3))
      diverged(fmt::format("the raw weights' mean is {:.4g} (1 at the optimum)", report.weight_mean));
    report.weight_change = (w - previous).abs().mean().item<double>() / std::max(report.weight_mean, 1e-12);
    report.loss = interval_loss / interval_steps;
    report.loss_trend = std::isnan(previous_interval_loss) ? 0.0 : report.loss - previous_interval_loss;
    previous = w;
    previous_interval_loss = report.loss;
    interval_loss = 0.0;
    interval_steps = 0;
    if (last) break;
    if (converge && anneal_start < 0) {
      // Progress is counted from the largest change so far: a fresh dual's weights first
      // move slowly, then fast, then settle.
      if (report.weight_change >= peak_change) {
        peak_change = best_change = report.weight_change;
        checks_without_progress = 0;
      } else {
        checks_without_progress = report.weight_change < 0.8 * best_change ? 0 : checks_without_progress + 1;
        best_change = std::min(best_change, report.weight_change);
      }
      if (checks_without_progress >= settings_.patience) start_anneal(step + 1);
    }
  }
  set_lr_factor(1.0);
  return report;
}

torch::Tensor TomDual::buffer_values(const torch::Tensor& s, const torch::Tensor& a,
                                     const torch::Tensor& r, const torch::Tensor& s_next,
                                     const torch::Tensor& done, const torch::Tensor& next_actions,
                                     const torch::Tensor& probs) const {
  const std::int64_t n = s.size(0);
  const auto q = q_avg_.ptr();
  std::vector<torch::Tensor> chunks;
  for (std::int64_t start = 0; start < n; start += kWeightChunk) {
    const auto len = std::min(kWeightChunk, n - start);
    const torch::Tensor sa = torch::cat({s.narrow(0, start, len), a.narrow(0, start, len)}, 1);
    if (w_avg_) {
      chunks.push_back(ratio(w_avg_, sa));
      continue;
    }
    const torch::Tensor q_sa = q->forward(sa);
    if (u_avg_) {
      const torch::Tensor carried = carried_constant(settings_.gamma, done.narrow(0, start, len), q->output_bias());
      chunks.push_back(u_avg_.ptr()->forward(sa) + carried - q_sa);
      continue;
    }
    const torch::Tensor acts = next_actions.narrow(1, start, len);
    const torch::Tensor next_q =
        q->forward(state_action_rows(s_next.narrow(0, start, len), acts)).view({acts.size(0), len});
    const torch::Tensor value = (next_q * probs.narrow(1, start, len)).sum(0);
    chunks.push_back(r.narrow(0, start, len) +
                     settings_.gamma * (1.0 - done.narrow(0, start, len)) * value - q_sa);
  }
  return torch::cat(chunks);
}

torch::Tensor TomDual::weights(const torch::Tensor& s, const torch::Tensor& a,
                               const torch::Tensor& r, const torch::Tensor& s_next,
                               const torch::Tensor& done, const NextActions& next, bool clip) const {
  const std::int64_t n = s.defined() ? s.size(0) : 0;
  if (n == 0) fail("TOM weights: the buffer is empty");
  check_batch({s, a, r, s_next, done}, n);
  check_finite(s, "s");
  check_finite(a, "a");
  check_finite(r, "r");
  check_finite(s_next, "s_next");
  check_finite(done, "done");
  torch::Tensor probs;
  if (needs_next_actions()) {
    probs = check_next(next, n, "buffer");
    check_finite(next.actions, "next actions");
    check_finite(probs, "next-action probabilities");
  }

  torch::NoGradGuard no_grad;
  const torch::Tensor values = buffer_values(s, a, r, s_next, done, next.actions, probs);
  const double clip_max = clip ? settings_.clip_max : std::numeric_limits<double>::infinity();
  if (w_avg_) return clip_and_normalise(values, clip_max, settings_.normalise);
  return weights_from_residuals(values, settings_.divergence, clip_max, settings_.normalise);
}

void TomDual::save(torch::serialize::OutputArchive& archive) const {
  const auto put = [&](const char* key, const torch::nn::Module& module) {
    torch::serialize::OutputArchive part;
    module.save(part);
    archive.write(key, part);
  };
  put("q", *q_);
  put("q_avg", *q_avg_);
  const auto put_optimizer = [&](const char* key, const torch::optim::Optimizer& optimizer) {
    torch::serialize::OutputArchive part;
    optimizer.save(part);
    archive.write(key, part);
  };
  put_optimizer("q_opt", *q_opt_);
  if (u_) {
    put("u_net", *u_);
    put("u_net_avg", *u_avg_);
    put_optimizer("u_net_opt", *u_opt_);
  }
  if (w_) {
    put("w", *w_);
    put("w_avg", *w_avg_);
    put_optimizer("w_opt", *w_opt_);
  }
  archive.write("steps_done", torch::tensor(steps_done_, torch::kInt64));
}

void TomDual::load(torch::serialize::InputArchive& archive) {
  const auto get = [&](const char* key, torch::nn::Module& module) {
    torch::serialize::InputArchive part;
    if (!archive.try_read(key, part)) fail("TOM dual checkpoint has no '{}' (another dual form?)", key);
    try {
      module.load(part);
    } catch (const c10::Error& e) {
      fail("TOM dual checkpoint: '{}' does not fit this dual's networks ({})", key, e.what_without_backtrace());
    }
  };
  const auto get_optimizer = [&](const char* key, torch::optim::Optimizer& optimizer) {
    torch::serialize::InputArchive part;
    if (!archive.try_read(key, part)) fail("TOM dual checkpoint has no '{}'", key);
    try {
      optimizer.load(part);
    } catch (const c10::Error& e) {
      fail("TOM dual checkpoint: corrupt optimiser state '{}' ({})", key, e.what_without_backtrace());
    }
  };
  get("q", *q_);
  get("q_avg", *q_avg_);
  get_optimizer("q_opt", *q_opt_);
  if (u_) {
    torch::serialize::InputArchive old_u;
    if (archive.try_read("u", old_u))
      fail("TOM dual checkpoint holds the conjugate-u network of an older version (a full U(s,a), before U "
           "carried Q's output bias); it cannot be continued, start the run again");
    get("u_net", *u_);
    get("u_net_avg", *u_avg_);
    get_optimizer("u_net_opt", *u_opt_);
  }
  if (w_) {
    get("w", *w_);
    get("w_avg", *w_avg_);
    get_optimizer("w_opt", *w_opt_);
  }
  torch::Tensor steps;
  if (!archive.try_read("steps_done", steps) || steps.numel() != 1) fail("TOM dual checkpoint has no step count");
  steps_done_ = steps.item<std::int64_t>();
}

}  // namespace tom::objectives
