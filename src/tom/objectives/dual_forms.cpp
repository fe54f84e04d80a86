#include "tom/objectives/dual_forms.hpp"

#include <limits>
#include <optional>

#include "tom/core/error.hpp"

namespace tom::objectives {
namespace {

// Concatenates each state with each of its K next actions: [K*B, S+A], rows k-major.
torch::Tensor state_action_rows(const torch::Tensor& states, const torch::Tensor& actions) {
  const auto k = actions.size(0), b = actions.size(1);
  return torch::cat({states.unsqueeze(0).expand({k, b, states.size(1)}), actions}, 2)
      .reshape({k * b, states.size(1) + actions.size(2)});
}

// The part of U(s,a) that conjugate-u takes from Q instead of learning: gamma (1-d) c, with
// c Q's output bias (see ConjugateUForm::step).
torch::Tensor carried_constant(double gamma, const torch::Tensor& done, const torch::Tensor& q_output_bias) {
  return gamma * (1.0 - done) * q_output_bias;
}

// The conjugate forms: their values are the dual residuals e, their weights f*'(e).
class ResidualForm : public DualForm {
 public:
  torch::Tensor weights(const torch::Tensor& values, double clip_max, bool normalise) const override {
    return divergence().weights_from_residuals(values, clip_max, normalise);
  }
  // Unclipped; a free scale is fixed at mean 1, where the divergence guard cannot read it.
  torch::Tensor probe_weights(const torch::Tensor& values) const override {
    return weights_scale_free()
               ? divergence().weights_from_residuals(values, std::numeric_limits<double>::infinity(), true)
               : divergence().ratio(values);
  }
  bool weights_scale_free() const override { return divergence().scale_free(); }

 protected:
  using DualForm::DualForm;
};

// Q alone: the next value inside f*, e = r + gamma (1-d) E_a'[Q(s',a')] - Q(s,a).
class ConjugateForm final : public ResidualForm {
 public:
  ConjugateForm(const TomDualSettings& settings, std::int64_t input_dim, torch::Device device,
                std::unique_ptr<const Divergence> divergence)
      : ResidualForm(settings, input_dim, device, std::move(divergence),
                     settings.bias_rate == "scaled" ? settings.lr / (1.0 - settings.gamma) : settings.lr) {}

  bool needs_next_actions() const override { return true; }

  // By hand, without autograd: one forward of Q through a tape, the loss's gradient in Q's
  // values, one backward through the tape into Q's gradients, one Adam step.
  torch::Tensor step(const StepSample& sample) override {
    torch::NoGradGuard no_grad;
    const torch::Tensor& rows = q_rows(sample);
    const std::int64_t n = rows.size(0), b = sample.batch.s.size(0), k = sample.next.actions.size(0);
    if (!tape_ || tape_->batch() != n) {
      tape_.emplace(q_.online->sizes(), rows.options(), n);
      grad_q_ = torch::empty({n, 1}, rows.options());
      value_coefficients_ = torch::empty({2 * b}, rows.options());
    }
    const nn::MlpLayers layers = q_.online->layers();
    const QTerms q = split_q(tape_->forward(layers, rows).view({n}), sample);
    const torch::Tensor e = sample.batch.r + q.discounted_next - q.q_sa;
    const torch::Tensor loss = q.initial_term + divergence().conjugate_term(e);

    // dLoss/de = f*'(e) / B (linear_weights / B); e holds +gamma (1-d) p_k Q(s', a'_k) and
    // -Q(s, a), the initial term (1-gamma) p_k Q(s0, a0_k) / B.
    const torch::Tensor de = divergence().linear_weights(e) / static_cast<double>(b);
    torch::Tensor grad_q_sa = grad_q_.narrow(0, 0, b).view({b}), grad_q_next = grad_q_.narrow(0, b, k * 2 * b).view({k, 2 * b});
    torch::Tensor initial_coefficients = value_coefficients_.narrow(0, 0, b), next_coefficients = value_coefficients_.narrow(0, b, b);
    at::neg_out(grad_q_sa, de);
    initial_coefficients.fill_((1.0 - gamma_) / static_cast<double>(b));
    at::mul_out(next_coefficients, de, gamma_ * (1.0 - sample.batch.done));
    at::mul_out(grad_q_next, sample.next_probs, value_coefficients_);
    const nn::MlpLayers gradients = q_.online_gradients();
    tape_->backward(layers, grad_q_, &gradients, false);
    q_.optimizer_step();
    return loss;
  }

  torch::Tensor values(const BufferRows& rows) const override {
    const auto q = q_.averaged.ptr();
    const auto k = rows.next_actions.size(0), len = rows.sa.size(0);
    const torch::Tensor q_sa = q->forward(rows.sa);
    const torch::Tensor next_q = q->forward(state_action_rows(rows.s_next, rows.next_actions)).view({k, len});
    const torch::Tensor value = (next_q * rows.next_probs).sum(0);
    return rows.r + gamma_ * (1.0 - rows.done) * value - q_sa;
  }

 private:
  std::optional<nn::FlatMlpTape> tape_;  // for the step's rows, made at the first step
  torch::Tensor grad_q_;                 // dLoss/dQ per row [rows, 1]
  torch::Tensor value_coefficients_;      // dLoss/dE_a'[Q] of the initial, then the next states [2B]
};

// A regressed U(s,a) inside f*': e = U - Q, unbiased for stochastic transitions.
class ConjugateUForm final : public ResidualForm {
 public:
  // U leaves Q's constant to Q's output bias (see step()), so the bias must carry it:
  // Q* is about -chi2/(1-gamma) plus O(1) structure, and at the layers' rate the bias would
  // need ~1/((1-gamma) lr) steps to get there. Its effect on e is scaled by 1-gamma, so
  // the faster rate adds no more noise to the weights than the other parameters do.
  ConjugateUForm(const TomDualSettings& settings, std::int64_t input_dim, torch::Device device,
                 std::unique_ptr<const Divergence> divergence)
      : ResidualForm(settings, input_dim, device, std::move(divergence), settings.lr / (1.0 - settings.gamma)),
        u_("u_net", input_dim, settings, device, settings.lr) {
    add_net(u_);
  }

  torch::Tensor step(const StepSample& sample) override {
    // U(s,a) regresses onto the sampled backup r + gamma (1-d) Q(s',a'), so U - Q is the
    // residual e with the conditional expectation inside. U and Q are both about
    // -chi2/(1-gamma) and e is their O(1) difference, more precise than two separate networks
    // can match; so U takes Q's output bias c as given and its network u learns the rest:
    // U = gamma (1-d) c + u(s,a), u regressing onto r + gamma (1-d) (Q(s',a') - c).
    // Q's surrogate has gradient (1-gamma) dQ(s0) + f*'(e) (gamma (1-d) dQ(s',a') - dQ(s,a)).
    // For chi2, f*'(e) = e + 1 unclipped (the conjugate form's f*): it is linear in e, so U's
    // regression noise averages out; the clipped max(e+1, 0) would, by Jensen, push the
    // estimate of every small ratio to 0 (measured in docs/tom_weights.md).
    const QTerms q = q_terms(sample);
    const ReplayBatch& batch = sample.batch;
    const torch::Tensor carried = carried_constant(gamma_, batch.done, q_.online->output_bias().detach());
    const torch::Tensor u_sa = u_.online->forward(q.sa);
    const torch::Tensor target = (batch.r + q.discounted_next - carried).detach();
    const torch::Tensor u_loss = torch::mse_loss(u_sa, target);
    u_.zero_grad();
    u_loss.backward();
    u_.optimizer_step();
    torch::Tensor w;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor e = u_sa + carried - q.q_sa;
      w = divergence().linear_weights(e);
    }
    const torch::Tensor loss = q.initial_term + (w * (q.discounted_next - q.q_sa)).mean();
    descend_q(loss);
    return loss;
  }

  torch::Tensor values(const BufferRows& rows) const override {
    const auto q = q_.averaged.ptr();
    const torch::Tensor q_sa = q->forward(rows.sa);
    const torch::Tensor carried = carried_constant(gamma_, rows.done, q->output_bias());
    return u_.averaged.ptr()->forward(rows.sa) + carried - q_sa;
  }

  void load(torch::serialize::InputArchive& archive) override {
    q_.load(archive);
    torch::serialize::InputArchive old_u;
    if (archive.try_read("u", old_u))
      fail("TOM dual checkpoint holds the conjugate-u network of an older version (a full U(s,a), before U "
           "carried Q's output bias); it cannot be continued, start the run again");
    u_.load(archive);
  }

 private:
  AveragedNet u_;  // U(s,a) less Q's output bias
};

// Q against a ratio network w(s,a) >= 0, by gradient descent-ascent on the Lagrangian.
class MinimaxForm final : public DualForm {
 public:
  MinimaxForm(const TomDualSettings& settings, std::int64_t input_dim, torch::Device device,
              std::unique_ptr<const Divergence> divergence)
      : DualForm(settings, input_dim, device, std::move(divergence), settings.lr),
        w_("w", input_dim, settings, device, settings.lr) {
    add_net(w_);
  }

  torch::Tensor step(const StepSample& sample) override {
    // The Lagrangian is linear in e, so sampled s' and a' give unbiased gradients. Q descends
    // it with w held fixed; w ascends it with e held fixed (simultaneous steps).
    const QTerms q = q_terms(sample);
    const torch::Tensor e = sample.batch.r + q.discounted_next - q.q_sa;
    const torch::Tensor w = ratio(w_.online, q.sa);
    const torch::Tensor q_loss = q.initial_term + (w.detach() * e).mean();
    const torch::Tensor w_gain = (w * e.detach() - divergence().generator(w)).mean();
    w_.zero_grad();
    // Each network's parameters only reach one of the two terms.
    const torch::Tensor loss = q_loss - w_gain;
    const torch::Tensor lagrangian = q.initial_term + w_gain;
    descend_q(loss);
    w_.optimizer_step();
    return lagrangian;
  }

  torch::Tensor values(const BufferRows& rows) const override { return ratio(w_.averaged, rows.sa); }

  torch::Tensor weights(const torch::Tensor& values, double clip_max, bool normalise) const override {
    return clip_and_normalise(values, clip_max, normalise);
  }
  torch::Tensor probe_weights(const torch::Tensor& values) const override { return values; }

 private:
  static torch::Tensor ratio(const DualNet& w_net, const torch::Tensor& sa) {
    // softplus(0) = log 2: a freshly made ratio network starts near w = 0.7, not at 0.
    return torch::softplus(w_net.ptr()->forward(sa));
  }

  AveragedNet w_;
};

}  // namespace

AveragedNet::AveragedNet(std::string key, std::int64_t input_dim, const TomDualSettings& settings,
                         torch::Device device, double output_bias_lr)
    : online(input_dim, settings.hidden, settings.layers),
      averaged(input_dim, settings.hidden, settings.layers),
      key_(std::move(key)) {
  online->to(device);
  averaged->to(device);
  {
    torch::NoGradGuard no_grad;
    auto src = online->parameters(), dst = averaged->parameters();
    for (std::size_t i = 0; i < src.size(); ++i) {
      dst[i].copy_(src[i]);
      dst[i].set_requires_grad(false);
      online_params_.push_back(src[i]);
      averaged_params_.push_back(dst[i]);
    }
  }
  // Weight decay on the layer weights only; the free output bias stays unpenalised.
  std::vector<torch::Tensor> decayed, free;
  for (const auto& p : online->parameters()) (p.is_same(online->output_bias()) ? free : decayed).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<torch::optim::AdamOptions>(
                                   torch::optim::AdamOptions(settings.lr).weight_decay(settings.l2)));
  groups.emplace_back(free, std::make_unique<torch::optim::AdamOptions>(output_bias_lr));
  optimizer_ = std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(settings.lr));
  for (auto& group : optimizer_->param_groups())
    base_lrs_.push_back(static_cast<torch::optim::AdamOptions&>(group.options()).lr());
}

nn::MlpLayers AveragedNet::online_gradients() {
  const auto gradient_of = [](torch::Tensor parameter) {
    if (!parameter.grad().defined()) parameter.mutable_grad() = torch::zeros_like(parameter);
    return parameter.grad();
  };
  const nn::MlpLayers parameters = online->layers();
  nn::MlpLayers gradients;
  for (std::size_t l = 0; l < parameters.size(); ++l) {
    gradients.weights.push_back(gradient_of(parameters.weights[l]));
    gradients.biases.push_back(gradient_of(parameters.biases[l]));
  }
  return gradients;
}

void AveragedNet::update_average(double blend) {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < online_params_.size(); ++i) averaged_params_[i].lerp_(online_params_[i], blend);
}

void AveragedNet::set_lr_factor(double factor) {
  std::size_t i = 0;
  for (auto& group : optimizer_->param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(base_lrs_.at(i++) * factor);
}

void AveragedNet::save(torch::serialize::OutputArchive& archive) const {
  const auto put = [&](const std::string& key, const auto& saved) {
    torch::serialize::OutputArchive part;
    saved.save(part);
    archive.write(key, part);
  };
  put(key_, *online);
  put(key_ + "_avg", *averaged);
  put(key_ + "_opt", *optimizer_);
}

void AveragedNet::load(torch::serialize::InputArchive& archive) {
  const auto get = [&](const std::string& key, torch::nn::Module& module) {
    torch::serialize::InputArchive part;
    if (!archive.try_read(key, part)) fail("TOM dual checkpoint has no '{}' (another dual form?)", key);
    try {
      module.load(part);
    } catch (const c10::Error& e) {
      fail("TOM dual checkpoint: '{}' does not fit this dual's networks ({})", key, e.what_without_backtrace());
    }
  };
  get(key_, *online);
  get(key_ + "_avg", *averaged);
  const std::string optimizer_key = key_ + "_opt";
  torch::serialize::InputArchive part;
  if (!archive.try_read(optimizer_key, part)) fail("TOM dual checkpoint has no '{}'", optimizer_key);
  try {
    optimizer_->load(part);
  } catch (const c10::Error& e) {
    fail("TOM dual checkpoint: corrupt optimiser state '{}' ({})", optimizer_key, e.what_without_backtrace());
  }
}

DualForm::DualForm(const TomDualSettings& settings, std::int64_t input_dim, torch::Device device,
                   std::unique_ptr<const Divergence> divergence, double q_output_bias_lr)
    : gamma_(settings.gamma),
      q_("q", input_dim, settings, device, q_output_bias_lr),
      divergence_(std::move(divergence)),
      nets_{&q_} {}

DualForm::QTerms DualForm::q_terms(const StepSample& sample) {
  return split_q(q_.online->forward(q_rows(sample)), sample);
}

const torch::Tensor& DualForm::q_rows(const StepSample& sample) {
  const ReplayBatch& batch = sample.batch;
  const auto b = batch.s.size(0), k = sample.next.actions.size(0), s_dim = batch.s.size(1),
             a_dim = batch.a.size(1);
  const auto n = b * (1 + 2 * k);
  if (!q_rows_.defined() || q_rows_.size(0) != n) q_rows_ = torch::empty({n, s_dim + a_dim}, batch.s.options());
  const torch::Tensor sa = q_rows_.narrow(0, 0, b);
  sa.narrow(1, 0, s_dim).copy_(batch.s);
  sa.narrow(1, s_dim, a_dim).copy_(batch.a);
  const torch::Tensor next = q_rows_.narrow(0, b, 2 * b * k).view({k, 2 * b, s_dim + a_dim});
  next.narrow(2, 0, s_dim).copy_(sample.starts_and_nexts.unsqueeze(0).expand({k, 2 * b, s_dim}));
  next.narrow(2, s_dim, a_dim).copy_(sample.next.actions);
  return q_rows_;
}

DualForm::QTerms DualForm::split_q(const torch::Tensor& q_all, const StepSample& sample) const {
  const ReplayBatch& batch = sample.batch;
  const auto b = batch.s.size(0), k = sample.next.actions.size(0);
  QTerms terms;
  terms.sa = q_rows_.narrow(0, 0, b);
  terms.q_sa = q_all.narrow(0, 0, b);
  const torch::Tensor values = (q_all.narrow(0, b, k * 2 * b).view({k, 2 * b}) * sample.next_probs).sum(0);
  terms.discounted_next = gamma_ * (1.0 - batch.done) * values.narrow(0, b, b);
  terms.initial_term = (1.0 - gamma_) * values.narrow(0, 0, b).mean();
  return terms;
}

void DualForm::descend_q(const torch::Tensor& loss) {
  q_.zero_grad();
  loss.backward();
  q_.optimizer_step();
}

void DualForm::update_averages(double blend) {
  for (auto* net : nets_) net->update_average(blend);
}

void DualForm::set_lr_factor(double factor) {
  for (auto* net : nets_) net->set_lr_factor(factor);
}

void DualForm::save(torch::serialize::OutputArchive& archive) const {
  for (const auto* net : nets_) net->save(archive);
}

void DualForm::load(torch::serialize::InputArchive& archive) {
  for (auto* net : nets_) net->load(archive);
}

std::unique_ptr<DualForm> make_dual_form(const TomDualSettings& settings, std::int64_t input_dim,
                                         torch::Device device) {
  auto divergence = make_divergence(settings.divergence);
  if (settings.form == "conjugate")
    return std::make_unique<ConjugateForm>(settings, input_dim, device, std::move(divergence));
  if (settings.form == "conjugate-u")
    return std::make_unique<ConjugateUForm>(settings, input_dim, device, std::move(divergence));
  if (settings.form == "minimax")
    return std::make_unique<MinimaxForm>(settings, input_dim, device, std::move(divergence));
  fail("TOM dual: unknown form '{}' (valid: conjugate, conjugate-u, minimax)", settings.form);
}

}  // namespace tom::objectives
