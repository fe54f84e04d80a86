#include "tom/objectives/dual_forms.hpp"

#include <array>
#include <limits>
#include <optional>

#include "tom/core/error.hpp"
#include "tom/core/worker_thread.hpp"

namespace tom::objectives {
namespace {

// Each of B states [B, S] with each of its K actions [K, B, A], into out [K, B, S+A]
// (or its [K*B, S+A] view): rows k-major.
void write_state_action_rows(const torch::Tensor& states, const torch::Tensor& actions, const torch::Tensor& out) {
  const auto k = actions.size(0), b = actions.size(1), s_dim = states.size(1);
  const torch::Tensor rows = out.view({k, b, s_dim + actions.size(2)});
  rows.narrow(2, 0, s_dim).copy_(states.unsqueeze(0).expand({k, b, s_dim}));
  rows.narrow(2, s_dim, actions.size(2)).copy_(actions);
}

// The same, newly allocated: [K*B, S+A].
torch::Tensor state_action_rows(const torch::Tensor& states, const torch::Tensor& actions) {
  const auto k = actions.size(0), b = actions.size(1);
  torch::Tensor out = torch::empty({k * b, states.size(1) + actions.size(2)}, states.options());
  write_state_action_rows(states, actions, out);
  return out;
}

// The part of U(s,a) that conjugate-u takes from Q instead of learning: gamma (1-d) c, with
// c Q's output bias (see ConjugateUForm::step).
torch::Tensor carried_constant(double gamma, const torch::Tensor& done, const torch::Tensor& q_output_bias) {
  return gamma * (1.0 - done) * q_output_bias;
}

// The conjugate forms: their values are the dual residuals e, their weights f*'(e).
class ResidualForm : public DualForm {
 public:
  torch::Tensor weights(const torch::Tensor& values, double clip_max) const override {
    return divergence().weights_from_residuals(values, clip_max);
  }
  // Unclipped; a free scale (kl) is at mean 1 by the ratio's definition.
  torch::Tensor probe_weights(const torch::Tensor& values) const override { return divergence().ratio(values); }
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

  // By hand, without autograd, in two halves of the batch's transitions, at the same time
  // on `pair`'s two threads: a forward of Q through each half's tape; the loss's gradient in
  // Q's values from the whole batch's residuals; a backward through each tape; the halves'
  // gradients summed into Q's and one Adam step, while `alongside` runs on the other thread.
  // With one thread the halves run one after the other: the same arithmetic.
  torch::Tensor step(const StepSample& sample, PairedWork& pair, const std::function<void()>& alongside) override {
    torch::NoGradGuard no_grad;
    const std::int64_t b = sample.batch.s.size(0);
    if (residuals_.numel() != b) residuals_ = torch::empty({b}, sample.batch.s.options());
    halves_[0].first = 0;
    halves_[0].count = halves_[1].first = (b + 1) / 2;
    halves_[1].count = b / 2;
    const nn::MlpLayers layers = q_.online->layers();
    pair([&] { forward(halves_[0], layers, sample); }, [&] { forward(halves_[1], layers, sample); });

    torch::Tensor loss = divergence().conjugate_term(residuals_);
    for (const Half& half : halves_)
      if (half.count > 0) loss = loss + half.initial_term;
    // dLoss/de = f*'(e) / B: linear_weights(e) / B.
    const torch::Tensor de = divergence().linear_weights(residuals_) / static_cast<double>(b);
    const nn::MlpLayers gradients = q_.online_gradients();
    pair([&] { backward(halves_[0], layers, sample, de, gradients); },
         [&] { backward(halves_[1], layers, sample, de, halves_[1].own_gradients(layers)); });
    pair(
        [&] {
          if (halves_[1].count > 0) {
            for (std::size_t l = 0; l < layers.size(); ++l) {
              gradients.weights[l].add_(halves_[1].gradients.weights[l]);
              gradients.biases[l].add_(halves_[1].gradients.biases[l]);
            }
          }
          q_.optimizer_step();
        },
        alongside);
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
  // One half of a step: the batch's transitions [first, first + count), their Q rows and the
  // buffers of their forward and backward pass (made at the first step, remade if a sampler
  // changes the number of next actions).
  struct Half {
    std::int64_t first = 0, count = 0;
    torch::Tensor rows;  // DualForm::fill_q_rows
    std::optional<nn::FlatMlpTape> tape;
    torch::Tensor grad_q;        // dLoss/dQ per row [rows, 1]
    torch::Tensor initial_term;  // the half's share of (1-gamma) E[Q(s0, a0)]
    nn::MlpLayers gradients;     // the second half's (the first writes into Q's own)

    const nn::MlpLayers& own_gradients(const nn::MlpLayers& layers) {
      if (gradients.size() != layers.size()) {
        gradients = {};
        for (std::size_t l = 0; l < layers.size(); ++l) {
          gradients.weights.push_back(torch::empty_like(layers.weights[l]));
          gradients.biases.push_back(torch::empty_like(layers.biases[l]));
        }
      }
      return gradients;
    }
  };

  // Q's values on the half's rows: its residuals (into residuals_) and initial term.
  void forward(Half& half, const nn::MlpLayers& layers, const StepSample& sample) {
    if (half.count == 0) return;
    fill_q_rows(sample, half.first, half.count, half.rows);
    const std::int64_t n = half.rows.size(0);
    if (!half.tape || half.tape->batch() != n) {
      half.tape.emplace(q_.online->sizes(), half.rows.options(), n);
      half.grad_q = torch::empty({n, 1}, half.rows.options());
    }
    const QTerms q = split_q(half.tape->forward(layers, half.rows).view({n}), half.rows, sample, half.first, half.count);
    torch::Tensor e = residuals_.narrow(0, half.first, half.count);
    at::sub_out(e, sample.batch.r.narrow(0, half.first, half.count) + q.discounted_next, q.q_sa);
    half.initial_term = q.initial_term;
  }

  // Backpropagates dLoss/de (de, the whole batch's) through the half's rows into `gradients`:
  // e holds -Q(s, a) and gamma (1-d) p_k Q(s', a'_k), the loss (1-gamma) p_k Q(s0, a0_k) / B.
  void backward(Half& half, const nn::MlpLayers& layers, const StepSample& sample, const torch::Tensor& de,
                const nn::MlpLayers& gradients) {
    if (half.count == 0) return;
    const std::int64_t b = sample.batch.s.size(0), c = half.count, k = sample.next.actions.size(0);
    const torch::Tensor de_half = de.narrow(0, half.first, c);
    const torch::Tensor grad = half.grad_q.view({c * (1 + 2 * k)});
    torch::Tensor grad_sa = grad.narrow(0, 0, c);
    const torch::Tensor later = grad.narrow(0, c, 2 * k * c).view({2, k, c});
    torch::Tensor grad_initial = later[0], grad_next = later[1];
    at::neg_out(grad_sa, de_half);
    at::mul_out(grad_initial, next_probs(sample, 0, half.first, c), (1.0 - gamma_) / static_cast<double>(b));
    at::mul_out(grad_next, next_probs(sample, 1, half.first, c),
                de_half * (gamma_ * (1.0 - sample.batch.done.narrow(0, half.first, c))));
    half.tape->backward(layers, half.grad_q, &gradients, false);
  }

  std::array<Half, 2> halves_;
  torch::Tensor residuals_;  // e of the step's batch [B]
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

  torch::Tensor step(const StepSample& sample, PairedWork& pair, const std::function<void()>& alongside) override {
    torch::Tensor loss;
    pair([&] { loss = descend(sample); }, alongside);
    return loss;
  }

 private:
  torch::Tensor descend(const StepSample& sample) {
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

 public:
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

  torch::Tensor step(const StepSample& sample, PairedWork& pair, const std::function<void()>& alongside) override {
    torch::Tensor lagrangian;
    pair([&] { lagrangian = descend(sample); }, alongside);
    return lagrangian;
  }

  torch::Tensor values(const BufferRows& rows) const override { return ratio(w_.averaged, rows.sa); }

  torch::Tensor weights(const torch::Tensor& values, double clip_max) const override {
    return clip_weights(values, clip_max);
  }
  torch::Tensor probe_weights(const torch::Tensor& values) const override { return values; }

 private:
  torch::Tensor descend(const StepSample& sample) {
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

  static torch::Tensor ratio(const DualNet& w_net, const torch::Tensor& sa) {
    // softplus(0) = log 2: a freshly made ratio network starts near w = 0.7, not at 0.
    return torch::softplus(w_net.ptr()->forward(sa));
  }

  AveragedNet w_;
};

}  // namespace

AveragedNet::AveragedNet(std::string key, std::int64_t input_dim, const TomDualSettings& settings,
                         torch::Device device, double output_bias_lr)
    : online(input_dim, settings.hidden, settings.layers, nn::init_from_name(settings.init)),
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
  const auto b = sample.batch.s.size(0);
  fill_q_rows(sample, 0, b, q_rows_);
  return split_q(q_.online->forward(q_rows_), q_rows_, sample, 0, b);
}

torch::Tensor DualForm::next_probs(const StepSample& sample, int part, std::int64_t first, std::int64_t count) {
  return sample.next_probs.narrow(1, part * sample.batch.s.size(0) + first, count);
}

void DualForm::fill_q_rows(const StepSample& sample, std::int64_t first, std::int64_t count, torch::Tensor& rows) {
  const ReplayBatch& batch = sample.batch;
  const auto b = batch.s.size(0), k = sample.next.actions.size(0), s_dim = batch.s.size(1), a_dim = batch.a.size(1);
  const auto n = count * (1 + 2 * k);
  if (!rows.defined() || rows.size(0) != n || rows.size(1) != s_dim + a_dim)
    rows = torch::empty({n, s_dim + a_dim}, batch.s.options());
  const torch::Tensor sa = rows.narrow(0, 0, count);
  sa.narrow(1, 0, s_dim).copy_(batch.s.narrow(0, first, count));
  sa.narrow(1, s_dim, a_dim).copy_(batch.a.narrow(0, first, count));
  const torch::Tensor later = rows.narrow(0, count, 2 * k * count).view({2, k, count, s_dim + a_dim});
  for (int part = 0; part < 2; ++part)  // the initial states, then the next states
    write_state_action_rows(sample.starts_and_nexts.narrow(0, part * b + first, count),
                            sample.next.actions.narrow(1, part * b + first, count), later[part]);
}

DualForm::QTerms DualForm::split_q(const torch::Tensor& q, const torch::Tensor& rows, const StepSample& sample,
                                   std::int64_t first, std::int64_t count) const {
  const auto b = sample.batch.s.size(0), k = sample.next.actions.size(0);
  QTerms terms;
  terms.sa = rows.narrow(0, 0, count);
  terms.q_sa = q.narrow(0, 0, count);
  const torch::Tensor later = q.narrow(0, count, 2 * k * count).view({2, k, count});
  terms.initial_term = (1.0 - gamma_) / static_cast<double>(b) * (later[0] * next_probs(sample, 0, first, count)).sum();
  terms.discounted_next =
      gamma_ * (1.0 - sample.batch.done.narrow(0, first, count)) * (later[1] * next_probs(sample, 1, first, count)).sum(0);
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
