#include "tom/objectives/tom_dual.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "tom/core/error.hpp"
#include "tom/core/worker_thread.hpp"
#include "tom/objectives/dual_forms.hpp"

namespace tom::objectives {
namespace {

constexpr std::int64_t kWeightChunk = 50000;

void check_finite(const torch::Tensor& t, const char* name) {
  if (!torch::isfinite(t).all().item<bool>()) fail("TOM dual: {} contains NaN or inf", name);
}

}  // namespace

void TomDualSettings::check() {
  check_settings("tom_dual", *this);
}

DualNetImpl::DualNetImpl(std::int64_t input_dim, int hidden, int layers, nn::Init init) : sizes_{input_dim} {
  std::int64_t in = input_dim;
  for (int i = 0; i < layers; ++i) {
    layers_.push_back(register_module("hidden" + std::to_string(i),
                                      torch::nn::Linear(torch::nn::LinearOptions(in, hidden))));
    in = hidden;
    sizes_.push_back(hidden);
  }
  layers_.push_back(
      register_module("out", torch::nn::Linear(torch::nn::LinearOptions(in, 1).bias(false))));
  sizes_.push_back(1);
  output_bias_ = register_parameter("output_bias", torch::zeros({1}));
  // torch::nn::Linear has drawn PyTorch's initialisation already; redraw only for another.
  if (init != nn::Init::torch_default) {
    auto global = at::detail::getDefaultCPUGenerator();
    for (auto& layer : layers_) nn::initialise_linear(layer->weight, layer->bias, init, global);
  }
}

nn::MlpLayers DualNetImpl::layers() const {
  nn::MlpLayers view;
  for (const auto& layer : layers_) {
    view.weights.push_back(layer->weight);
    view.biases.push_back(layer->bias.defined() ? layer->bias : output_bias_);
  }
  return view;
}

torch::Tensor DualNetImpl::forward(const torch::Tensor& x) { return nn::mlp_forward(layers(), x).squeeze(1); }

TomDual::TomDual(TomDualSettings settings, std::int64_t state_dim, std::int64_t action_dim,
                 torch::Device device)
    : settings_(std::move(settings)), state_dim_(state_dim), action_dim_(action_dim), on_cpu_(device.is_cpu()) {
  settings_.check();
  if (state_dim < 1 || action_dim < 1)
    fail("TOM dual: state and action dimensions must be positive (got {}, {})", state_dim,
         action_dim);
  form_ = make_dual_form(settings_, state_dim + action_dim, device);
}

TomDual::TomDual(TomDual&&) noexcept = default;
TomDual& TomDual::operator=(TomDual&&) noexcept = default;
TomDual::~TomDual() = default;

bool TomDual::needs_next_actions() const { return form_->needs_next_actions(); }

const Divergence& TomDual::divergence() const { return form_->divergence(); }

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

StepSample TomDual::draw(const DualData& data) const {
  const std::int64_t b = settings_.batch;
  StepSample sample{data.sample_replay(b)};
  check_batch(sample.batch, b);
  const torch::Tensor s0 = data.sample_initial_states(b);
  if (s0.sizes() != torch::IntArrayRef({b, state_dim_}))
    fail("TOM dual: initial states have shape {} (expected [{}, {}])", c10::str(s0.sizes()),
         b, state_dim_);
  // One policy call and one Q forward cover the initial and the next states.
  sample.starts_and_nexts = torch::cat({s0, sample.batch.s_next});
  sample.next = data.sample_next_actions(sample.starts_and_nexts, settings_.next_actions);
  sample.next_probs = check_next(sample.next, 2 * b, "sampled");
  return sample;
}

double TomDual::descend(const StepSample& sample, PairedWork& pair, const std::function<void()>& alongside) {
  const torch::Tensor loss = form_->step(sample, pair, alongside);
  form_->update_averages(1.0 - settings_.ema);
  ++steps_done_;
  return loss.item<double>();
}

double TomDual::step(const DualData& data) {
  PairedWork pair(worker_, on_cpu_);
  return descend(draw(data), pair, [] {});
}

void TomDual::set_lr_factor(double factor) {
  if (!(factor > 0.0) || !std::isfinite(factor))
    fail("TOM dual: learning-rate factor must be positive and finite (got {})", factor);
  form_->set_lr_factor(factor);
}

namespace {

// The learning rate over one train() call. fixed: constant. converge: constant until
// `patience` checks in a row bring no 20% smaller change of the probe weights (they have
// reached the noise floor of this rate), then an exponential anneal to anneal_factor over
// twice as many steps as the constant phase took (the rarely sampled entries settle
// last: docs/tom_weights.md); a third of the budget at most goes to the constant phase.
class DualSchedule {
 public:
  DualSchedule(bool converge, int max_steps, int patience, double anneal_factor)
      : converge_(converge), max_steps_(max_steps), patience_(patience), anneal_factor_(anneal_factor) {}

  // The learning-rate factor of `step`, once the anneal has started (else none: the
  // constant rate stands).
  std::optional<double> lr_factor(int step) {
    if (converge_ && anneal_start_ < 0 && step >= max_steps_ / 3) start_anneal(step);
    if (anneal_start_ < 0) return std::nullopt;
    const double progress = std::min(1.0, static_cast<double>(step - anneal_start_) / anneal_steps_);
    return std::pow(anneal_factor_, progress);
  }
  // Whether `step` is the last: the budget's, or the anneal's end.
  bool last(int step) const {
    return step + 1 == max_steps_ || (anneal_start_ >= 0 && step + 1 >= anneal_start_ + anneal_steps_);
  }
  // A check after `step` measured the probe weights' relative change. Progress is counted
  // from the largest change so far: a fresh dual's weights first move slowly, then fast,
  // then settle.
  void record_check(int step, double change) {
    if (!converge_ || anneal_start_ >= 0) return;
    if (change >= peak_change_) {
      peak_change_ = best_change_ = change;
      checks_without_progress_ = 0;
    } else {
      checks_without_progress_ = change < 0.8 * best_change_ ? 0 : checks_without_progress_ + 1;
      best_change_ = std::min(best_change_, change);
    }
    if (checks_without_progress_ >= patience_) start_anneal(step + 1);
  }

 private:
  void start_anneal(int step) {
    anneal_start_ = step;
    anneal_steps_ = std::max(1, std::min(2 * step, max_steps_ - step));
  }

  bool converge_;
  int max_steps_, patience_;
  double anneal_factor_;
  double best_change_ = std::numeric_limits<double>::infinity(), peak_change_ = 0.0;
  int checks_without_progress_ = 0, anneal_start_ = -1, anneal_steps_ = 0;
};

// The checks of TomDual::train: the steps' losses are summed between checks; a check reads
// the weights of a fixed probe batch, their mean, their change since the last check and
// the interval's mean loss into the report.
class ProbeChecks {
 public:
  explicit ProbeChecks(std::function<torch::Tensor()> probe_weights)
      : probe_weights_(std::move(probe_weights)), previous_(probe_weights_()) {}

  // Adds a step's loss; whether a check is due after it.
  bool add(double loss, bool last, int check_every) {
    interval_loss_ += loss;
    ++interval_steps_;
    return interval_steps_ >= check_every || last;
  }

  // The check after `step` (counted from 0). Returns false, leaving `report` as it was,
  // when a probe weight is not finite.
  bool check(int step, DualTrainReport& report) {
    const torch::Tensor w = probe_weights_();
    if (!torch::isfinite(w).all().item<bool>()) return false;
    report.steps = step + 1;
    report.weight_mean = w.mean().item<double>();
    report.weight_change = (w - previous_).abs().mean().item<double>() / std::max(report.weight_mean, 1e-12);
    report.loss = interval_loss_ / interval_steps_;
    report.loss_trend = std::isnan(previous_interval_loss_) ? 0.0 : report.loss - previous_interval_loss_;
    previous_ = w;
    previous_interval_loss_ = report.loss;
    interval_loss_ = 0.0;
    interval_steps_ = 0;
    return true;
  }

 private:
  std::function<torch::Tensor()> probe_weights_;
  torch::Tensor previous_;
  double interval_loss_ = 0.0, previous_interval_loss_ = std::numeric_limits<double>::quiet_NaN();
  int interval_steps_ = 0;
};

}  // namespace

DualTrainReport TomDual::train(const DualData& data, int max_steps) {
  if (max_steps < 0) fail("TOM dual: steps must be non-negative (got {})", max_steps);
  if (!data.sample_initial_states || !data.sample_replay || !data.sample_next_actions)
    fail("TOM dual: DualData needs all three samplers");
  DualTrainReport report;
  if (max_steps == 0) return report;
  const auto diverged = [&](const std::string& what) {
    fail("TOM dual diverged after {} steps: {} (form {}, lr {}); lower the learning rate", steps_done_, what,
         settings_.form, settings_.lr);
  };

  ProbeChecks checks(probe_weights(data));
  DualSchedule schedule(settings_.schedule == "converge", max_steps, settings_.patience, settings_.anneal_factor);
  // Each step's sample is drawn while the step before it descends (with 2+ threads at the
  // same time, alongside the step's own split; DualForm::step): the samplers and the dual's
  // networks share nothing, and the samples are drawn in the same order either way, so 1
  // and 2 threads give the same results.
  PairedWork both(worker_, on_cpu_);
  StepSample next = draw(data);
  for (int step = 0; step < max_steps; ++step) {
    if (const auto factor = schedule.lr_factor(step)) set_lr_factor(*factor);
    const bool last = schedule.last(step);  // known before the step: the anneal only starts at a check
    const StepSample current = std::move(next);
    const double loss = descend(current, both, [&] {
      if (!last) next = draw(data);
    });
    if (!std::isfinite(loss)) diverged(fmt::format("the loss is {}", loss));
    if (!checks.add(loss, last, settings_.check_every)) continue;
    if (!checks.check(step, report)) diverged("a weight is not finite");
    // Orders of magnitude off: a dual short of convergence is nearer (the first fit of a
    // hopper run has a mean of 0.23 after its 1000 steps), a collapsed or exploding one further.
    if (!form_->weights_scale_free() && !(report.weight_mean > 1e-3 && report.weight_mean < 1e3))
      diverged(fmt::format("the raw weights' mean is {:.4g} (at the optimum 1, or E[1 - gamma^T] < 1 with terminations at T)",
                           report.weight_mean));
    if (last) break;
    schedule.record_check(step, report.weight_change);
  }
  set_lr_factor(1.0);
  return report;
}

std::function<torch::Tensor()> TomDual::probe_weights(const DualData& data) const {
  // Fixed replay transitions (and next actions) whose weights each check compares.
  const ReplayBatch probe = data.sample_replay(settings_.probe_rows);
  check_batch(probe, settings_.probe_rows);
  const NextActions next =
      needs_next_actions() ? data.sample_next_actions(probe.s_next, settings_.next_actions) : NextActions{};
  const torch::Tensor next_probs =
      needs_next_actions() ? check_next(next, settings_.probe_rows, "probe") : torch::Tensor{};
  return [this, probe, next, next_probs] {
    torch::NoGradGuard no_grad;
    return form_->probe_weights(
        buffer_values(probe.s, probe.a, probe.r, probe.s_next, probe.done, next.actions, next_probs));
  };
}

torch::Tensor TomDual::buffer_values(const torch::Tensor& s, const torch::Tensor& a,
                                     const torch::Tensor& r, const torch::Tensor& s_next,
                                     const torch::Tensor& done, const torch::Tensor& next_actions,
                                     const torch::Tensor& probs) const {
  const std::int64_t n = s.size(0);
  std::vector<torch::Tensor> chunks;
  for (std::int64_t start = 0; start < n; start += kWeightChunk) {
    const auto len = std::min(kWeightChunk, n - start);
    const auto rows = [&](const torch::Tensor& t, std::int64_t dim = 0) { return t.narrow(dim, start, len); };
    BufferRows chunk{torch::cat({rows(s), rows(a)}, 1), rows(r), rows(s_next), rows(done)};
    if (needs_next_actions()) {
      chunk.next_actions = rows(next_actions, 1);
      chunk.next_probs = rows(probs, 1);
    }
    chunks.push_back(form_->values(chunk));
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
  return form_->weights(values, clip_max);
}

void TomDual::save(torch::serialize::OutputArchive& archive) const {
  form_->save(archive);
  archive.write("steps_done", torch::tensor(steps_done_, torch::kInt64));
}

void TomDual::load(torch::serialize::InputArchive& archive) {
  form_->load(archive);
  torch::Tensor steps;
  if (!archive.try_read("steps_done", steps) || steps.numel() != 1) fail("TOM dual checkpoint has no step count");
  steps_done_ = steps.item<std::int64_t>();
}

}  // namespace tom::objectives
