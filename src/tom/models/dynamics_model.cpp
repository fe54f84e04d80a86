#include "tom/models/dynamics_model.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#include "tom/core/error.hpp"
#include "tom/core/worker_thread.hpp"
#include "tom/models/checks.hpp"

namespace tom::models {

namespace {

// Held-out rows are evaluated in chunks of this many, so memory stays bounded whatever
// max_holdout is.
constexpr std::int64_t kEvaluationChunk = 8192;

std::vector<double> to_vector(const torch::Tensor& values) {
  auto cpu = values.to(torch::kCPU, torch::kFloat64).contiguous();
  return {cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel()};
}

bool all_finite(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

DynamicsModel::~DynamicsModel() = default;

struct DynamicsModel::HoldoutScores {
  std::vector<double> criterion, nll, mse;  // per trained member
};

DynamicsModel::DynamicsModel(std::int64_t obs_dim, std::int64_t action_dim, const FitSettings& fit_settings,
                             std::uint64_t seed, torch::Device device)
    : obs_dim_(obs_dim),
      action_dim_(action_dim),
      fit_settings_(fit_settings),
      device_(device),
      generator_(at::detail::createCPUGenerator(seed)),
      input_norm_(std::max<std::int64_t>(obs_dim + action_dim, 0), device),
      target_norm_(std::max<std::int64_t>(obs_dim + 1, 0), device) {
  if (obs_dim < 1) fail("model obs_dim must be at least 1 (got {})", obs_dim);
  if (action_dim < 1) fail("model action_dim must be at least 1 (got {})", action_dim);
  // The fit settings are checked with the rest of the model's by the derived class,
  // under the model's section name (e.g. "mdn.patience").
}

torch::Tensor DynamicsModel::uniform(std::vector<std::int64_t> sizes, torch::Generator& gen) {
  return torch::rand(sizes, gen, torch::kFloat32).to(device_);
}

torch::Tensor DynamicsModel::gaussian(std::vector<std::int64_t> sizes, torch::Generator& gen) {
  return torch::randn(sizes, gen, torch::kFloat32).to(device_);
}

torch::Tensor DynamicsModel::normalised_inputs(const torch::Tensor& obs, const torch::Tensor& action) const {
  check_tensor(obs, "obs", {-1, obs_dim_});
  check_tensor(action, "action", {obs.size(0), action_dim_});
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
  return input_norm_.normalise(torch::cat({obs.to(options), action.to(options)}, 1));
}

Prediction DynamicsModel::to_prediction(const torch::Tensor& obs, const torch::Tensor& normalised_y) const {
  auto y = target_norm_.denormalise(normalised_y);
  return {obs.to(y.options()) + y.narrow(1, 1, obs_dim_), y.select(1, 0).contiguous()};
}

DynamicsModel::Moments DynamicsModel::moments(const torch::Tensor& obs, const torch::Tensor& action) {
  torch::NoGradGuard no_grad;
  const auto inputs = normalised_inputs(obs, action);
  const auto members = trained_members();
  const auto out = forward_rows(inputs.unsqueeze(0).expand({members, inputs.size(0), inputs.size(1)}),
                                torch::zeros({members, inputs.size(0), target_norm_.dim()}, inputs.options()),
                                /*with_moments=*/true);
  const auto elites = torch::tensor(elites_, torch::kLong).to(device_);
  const auto mean = target_norm_.denormalise(out.mean.index_select(0, elites));             // [E, B, D]
  const auto variance = (out.logvar.index_select(0, elites) + 2.0 * target_norm_.std().log()).exp();
  return {mean.mean(0), variance.mean(0) + mean.var(0, /*unbiased=*/false)};
}

torch::Tensor DynamicsModel::row_losses(const RowOutputs& out, const torch::Tensor& raw_targets,
                                        const torch::Tensor& indices, const BatchLoss& loss) const {
  if (!loss) return out.objective;
  const auto raw_mean = target_norm_.denormalise(out.mean);
  const auto raw_logvar = out.logvar + 2.0 * target_norm_.std().log();
  auto rows = loss(BatchLossInput{raw_mean, raw_logvar, raw_targets, indices, out.dim_nll, target_norm_.std()});
  if (!rows.defined() || rows.sizes() != out.objective.sizes())
    fail("custom batch loss must return one loss per row, shape {}, got {}", shape_of(out.objective),
         rows.defined() ? shape_of(rows) : "nothing");
  return rows;
}

DynamicsModel::HoldoutScores DynamicsModel::evaluate(const torch::Tensor& inputs, const torch::Tensor& targets,
                                                     const torch::Tensor& raw_targets, const torch::Tensor& rows,
                                                     const torch::Tensor& weights, const BatchLoss& loss) {
  torch::NoGradGuard no_grad;
  const auto members = trained_members();
  const auto n = inputs.size(0);
  auto criterion = torch::zeros({members}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  auto nll = criterion.clone(), mse = criterion.clone();
  auto expand = [members](const torch::Tensor& t, std::int64_t start, std::int64_t length) {
    auto chunk = t.narrow(0, start, length).unsqueeze(0);
    std::vector<std::int64_t> sizes(chunk.sizes().begin(), chunk.sizes().end());
    sizes[0] = members;
    return chunk.expand(sizes);
  };
  for (std::int64_t start = 0; start < n; start += kEvaluationChunk) {
    const auto length = std::min(kEvaluationChunk, n - start);
    const auto y = expand(targets, start, length);
    const auto out = forward_rows(expand(inputs, start, length), y, /*with_moments=*/true);
    const auto w = weights.narrow(0, start, length);
    const auto squared_error = (out.mean - y).square().mean(-1);
    const auto crit =
        loss ? row_losses(out, expand(raw_targets, start, length), expand(rows, start, length), loss) : squared_error;
    criterion += (crit * w).sum(1);
    nll += (out.nll * w).sum(1);
    mse += (squared_error * w).sum(1);
  }
  const auto total = weights.sum().to(torch::kFloat64);
  return {to_vector(criterion / total), to_vector(nll / total), to_vector(mse / total)};
}

DynamicsModel::LossAndGradient DynamicsModel::likelihood_gradient(int, const torch::Tensor&, const torch::Tensor&,
                                                                  const torch::Tensor&) {
  fail("the {} model has no hand-written gradient", kind());
}

struct DynamicsModel::Split {
  torch::Tensor inputs, targets, raw_targets, origins, loss_weights, score_weights;
};

struct DynamicsModel::Prepared {
  Split train, holdout;
  torch::Tensor sample_weights;  // [train rows], for EpochSampler
  Normaliser old_input_norm, old_target_norm;
};

DynamicsModel::Prepared DynamicsModel::prepare(const Transitions& data, const data::Weights& weights,
                                               double holdout_ratio) {
  check_tensor(data.obs, "obs", {-1, obs_dim_});
  const auto n = data.obs.size(0);
  check_tensor(data.action, "action", {n, action_dim_});
  check_tensor(data.reward, "reward", {n});
  check_tensor(data.next_obs, "next_obs", {n, obs_dim_});
  if (data.origin.defined() && (data.origin.dim() != 1 || data.origin.size(0) != n))
    fail("origin must hold one entry per transition [{}], got {}", n, shape_of(data.origin));
  if (n < 2) fail("fitting a model needs at least 2 transitions (got {})", n);
  if (holdout_ratio < 0.0 || holdout_ratio > 0.5) fail("holdout ratio must lie in [0, 0.5] (got {})", holdout_ratio);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device_);

  // The rows' weights rescaled to mean 1, in double so that equal weights become exactly
  // 1 (a resample's weights average 1 only in expectation, and may all be zero).
  auto w = torch::ones({n}, options);
  if (!weights.uniform()) {
    if (weights.values().size(0) != n) fail("{} weights for {} transitions", weights.values().size(0), n);
    const auto w64 = weights.values().to(torch::kFloat64);
    if (w64.sum().item<double>() <= 0.0) fail("weights are all zero: nothing to fit");
    w = (w64 / w64.mean()).to(options);
  }
  const bool sample_mode = fit_settings_.weighting == "sample";
  const auto loss_weights = sample_mode ? torch::ones_like(w) : w;

  const double ratio = holdout_ratio > 0.0 ? holdout_ratio : fit_settings_.holdout_ratio;
  const auto holdout_n = std::clamp<std::int64_t>(static_cast<std::int64_t>(n * ratio), 1,
                                                  std::min<std::int64_t>(fit_settings_.max_holdout, n - 1));
  const auto order = torch::randperm(n, generator_, torch::kInt64).to(device_);
  const auto holdout_rows = order.narrow(0, 0, holdout_n), train_rows = order.narrow(0, holdout_n, n - holdout_n);
  if (w.index_select(0, holdout_rows).sum().item<double>() <= 0.0)
    fail("every held-out transition has weight zero; give more transitions positive weight");
  if (w.index_select(0, train_rows).sum().item<double>() <= 0.0)
    fail("every training transition has weight zero; give more transitions positive weight");

  const auto x = torch::cat({data.obs.to(options), data.action.to(options)}, 1);
  const auto y = torch::cat({data.reward.to(options).unsqueeze(1), data.next_obs.to(options) - data.obs.to(options)}, 1);
  Prepared prepared{{}, {}, {}, input_norm_, target_norm_};
  input_norm_.fit(x.index_select(0, train_rows));
  target_norm_.fit(y.index_select(0, train_rows));
  const auto xn = input_norm_.normalise(x), yn = target_norm_.normalise(y);
  const auto origin = data.origin.defined() ? data.origin.to(device_, torch::kInt64) : torch::arange(n, order.options());
  auto split = [&](const torch::Tensor& rows) {
    return Split{xn.index_select(0, rows),           yn.index_select(0, rows),
                 y.index_select(0, rows),            origin.index_select(0, rows),
                 loss_weights.index_select(0, rows), w.index_select(0, rows)};
  };
  prepared.train = split(train_rows);
  prepared.holdout = split(holdout_rows);
  prepared.sample_weights = w.index_select(0, train_rows);
  return prepared;
}

double DynamicsModel::train_epoch(const Split& train, const torch::Tensor& epoch_rows, std::int64_t steps,
                                  const BatchLoss& loss) {
  const auto members = trained_members();
  const std::int64_t batch = fit_settings_.batch_size;
  const auto available = epoch_rows.size(1);
  auto epoch_loss = torch::zeros({}, train.inputs.options());
  // For the whole epoch: with 2+ threads every op between the halves (sampling, Adam)
  // runs single-threaded too, so no idle thread team spins against the halves' threads.
  PairedWork both(worker_, device_.is_cpu());
  const bool by_hand = !loss && has_likelihood_gradient();
  std::array<torch::Tensor, 2> half_gradients;  // by hand: each half's gradient
  for (std::int64_t step = 0; step < steps; ++step) {
    const auto length = std::min(batch, available - step * batch);
    const auto rows = epoch_rows.narrow(1, step * batch, length);
    // The loss of the rows [begin, end) of this minibatch, as their share of its mean, and
    // its gradient; the first half also carries the regulariser. By hand, each half's
    // gradient is its own buffer, summed a + b below; autograd adds the two halves'
    // gradients into the parameters' (zeroed) gradient buffer: 0 + a + b, the same sum in
    // either order.
    auto half = [&](int slot, std::int64_t begin, std::int64_t end, bool with_regulariser, torch::Tensor& total) {
      if (end == begin && (by_hand || !with_regulariser)) return;
      const auto flat = rows.narrow(1, begin, end - begin).reshape({-1});
      auto gather = [&](const torch::Tensor& t) { return t.index_select(0, flat).view({members, end - begin, -1}); };
      if (by_hand) {
        const auto row_weights =
            train.loss_weights.index_select(0, flat).view({members, end - begin}) / static_cast<double>(length);
        auto result = likelihood_gradient(slot, gather(train.inputs), gather(train.targets), row_weights);
        total = result.loss;
        half_gradients[slot] = result.gradient;
        return;
      }
      const auto out = forward_rows(gather(train.inputs), gather(train.targets), /*with_moments=*/static_cast<bool>(loss));
      const auto per_row =
          loss ? row_losses(out, gather(train.raw_targets),
                            train.origins.index_select(0, flat).view({members, end - begin}), loss)
               : out.objective;
      total = (per_row * train.loss_weights.index_select(0, flat).view({members, end - begin})).sum(1).sum() /
              static_cast<double>(length);
      if (with_regulariser)
        if (auto extra = regulariser(); extra.defined()) total = total + extra;
      total.backward();
      total = total.detach();
    };
    torch::Tensor first, second;
    half_gradients = {};
    if (!by_hand) params_.zero_grad();
    both([&] { half(0, 0, length / 2, true, first); }, [&] { half(1, length / 2, length, false, second); });
    if (by_hand) {
      // The same sum a + b with 1 or 2 threads; a one-row batch has only the second half.
      auto gradient = params_.gradient();
      if (half_gradients[0].defined()) {
        at::add_out(gradient, half_gradients[0], half_gradients[1]);
      } else {
        gradient.copy_(half_gradients[1]);
      }
    }
    params_.adam_step(fit_settings_.learning_rate);
    if (first.defined()) epoch_loss += first;
    if (second.defined()) epoch_loss += second;
  }
  return epoch_loss.item<double>();
}

FitReport DynamicsModel::fit(const Transitions& data, const data::Weights& weights, const BatchLoss& loss,
                             double holdout_ratio, const std::string& epoch) {
  FitSettings sampling = fit_settings_;
  if (!epoch.empty()) {
    epoch_forms().check("epoch", epoch);
    sampling.epoch = epoch;
  }
  Prepared prepared = prepare(data, weights, holdout_ratio);
  const Split& train = prepared.train;
  const Split& holdout = prepared.holdout;
  const auto members = trained_members();
  const EpochSampler sampler(sampling, members, train.inputs.size(0), prepared.sample_weights, bootstrap(), generator_);

  const auto snapshot = params_.snapshot();
  auto fail_diverged = [&](const char* where, int epoch) {
    params_.restore(snapshot);
    input_norm_ = prepared.old_input_norm;
    target_norm_ = prepared.old_target_norm;
    fail("model fit diverged: non-finite {} loss in epoch {}; the model was restored to its state before the fit",
         where, epoch);
  };
  const bool score_by_nll = fit_settings_.holdout_score == "nll" && !loss;
  auto score = [&](const HoldoutScores& s) -> const std::vector<double>& { return score_by_nll ? s.nll : s.criterion; };

  FitReport report;
  EarlyStopping stopping(members, fit_settings_.patience, fit_settings_.min_improvement);
  HoldoutScores held;  // of the latest epoch
  for (int epoch = 1; epoch <= fit_settings_.max_epochs; ++epoch) {
    const double epoch_loss = train_epoch(train, sampler.next(generator_), sampler.steps(), loss);
    report.gradient_steps += sampler.steps();
    report.epochs = epoch;
    if (!std::isfinite(epoch_loss)) fail_diverged("training", epoch);
    held = evaluate(holdout.inputs, holdout.targets, holdout.raw_targets, holdout.origins, holdout.score_weights, loss);
    if (!all_finite(score(held))) fail_diverged("held-out", epoch);
    if (stopping.update(score(held))) {
      report.stopped_early = true;
      break;
    }
  }

  // Elites: the members with the lowest held-out score after training.
  std::vector<std::int64_t> ranking(members);
  std::iota(ranking.begin(), ranking.end(), 0);
  std::stable_sort(ranking.begin(), ranking.end(),
                   [&](std::int64_t a, std::int64_t b) { return score(held)[a] < score(held)[b]; });
  elites_.assign(ranking.begin(), ranking.begin() + elite_count());
  std::sort(elites_.begin(), elites_.end());

  auto elite_mean = [this](const std::vector<double>& per_member) {
    double sum = 0.0;
    for (auto m : elites_) sum += per_member[m];
    return sum / static_cast<double>(elites_.size());
  };
  const auto train_eval_n = std::min<std::int64_t>(train.inputs.size(0), fit_settings_.max_holdout);
  auto head = [&](const torch::Tensor& t) { return t.narrow(0, 0, train_eval_n); };
  const auto fitted = evaluate(head(train.inputs), head(train.targets), head(train.raw_targets), head(train.origins),
                               head(train.score_weights), loss);
  report.member_holdout_loss = score(held);
  report.holdout_nll = elite_mean(held.nll);
  report.holdout_mse = elite_mean(held.mse);
  report.train_nll = elite_mean(fitted.nll);
  report.train_mse = elite_mean(fitted.mse);
  return report;
}

void DynamicsModel::save(torch::serialize::OutputArchive& archive) const {
  archive.write("model/kind", c10::IValue(kind()));
  for (const auto& [name, value] : layout()) archive.write("model/layout/" + name, c10::IValue(value));
  params_.save(archive, "model/parameters/");
  input_norm_.save(archive, "model/input_normaliser/");
  target_norm_.save(archive, "model/target_normaliser/");
  archive.write("model/elites", torch::tensor(elites_, torch::kInt64));
  archive.write("model/generator", generator_.get_state());
}

void DynamicsModel::save(const std::string& path) const {
  torch::serialize::OutputArchive archive;
  save(archive);
  try {
    archive.save_to(path);
  } catch (const c10::Error& e) {
    fail("cannot write model file {}: {}", path, e.what_without_backtrace());
  }
}

void DynamicsModel::load(torch::serialize::InputArchive& archive) {
  try {
    c10::IValue stored_kind;
    archive.read("model/kind", stored_kind);
    if (!stored_kind.isString() || stored_kind.toStringRef() != kind())
      fail("checkpoint holds a '{}' model, expected '{}'",
           stored_kind.isString() ? stored_kind.toStringRef() : "unknown", kind());
    for (const auto& [name, value] : layout()) {
      c10::IValue stored;
      archive.read("model/layout/" + name, stored);
      if (!stored.isInt() || stored.toInt() != value)
        fail("checkpoint model has {} = {}, this model has {}", name,
             stored.isInt() ? std::to_string(stored.toInt()) : "?", value);
    }
    torch::Tensor elites, generator_state;
    archive.read("model/elites", elites);
    archive.read("model/generator", generator_state);
    if (elites.dim() != 1 || elites.size(0) != elite_count() || elites.scalar_type() != torch::kInt64 ||
        (elites < 0).any().item<bool>() || (elites >= trained_members()).any().item<bool>())
      fail("checkpoint entry model/elites is malformed: {} (expected {} member indices below {})", shape_of(elites),
           elite_count(), trained_members());
    params_.load(archive, "model/parameters/");
    input_norm_.load(archive, "model/input_normaliser/");
    target_norm_.load(archive, "model/target_normaliser/");
    elites_.assign(elites.data_ptr<std::int64_t>(), elites.data_ptr<std::int64_t>() + elites.numel());
    generator_.set_state(generator_state);
  } catch (const c10::Error& e) {
    fail("cannot read model checkpoint: {}", e.what_without_backtrace());
  }
}

void DynamicsModel::load(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    fail("cannot read model file {}: {}", path, e.what_without_backtrace());
  }
  load(archive);
}

double prediction_mse(DynamicsModel& model, const torch::Tensor& obs, const torch::Tensor& action,
                      const torch::Tensor& reward, const torch::Tensor& next_obs) {
  torch::NoGradGuard no_grad;
  const Prediction predicted = model.mean(obs, action);
  const double next_error = (predicted.next_obs - next_obs).square().sum().item<double>();
  const double reward_error = (predicted.reward - reward).square().sum().item<double>();
  return (next_error + reward_error) / static_cast<double>(obs.size(0) * (1 + obs.size(1)));
}

ModelStep sample_step(DynamicsModel& model, const torch::Tensor& obs, const torch::Tensor& action,
                      const TerminationFn& is_terminal, bool sample) {
  auto predicted = sample ? model.sample(obs, action) : model.mean(obs, action);
  auto terminated = is_terminal(obs, action, predicted.next_obs);
  if (!terminated.defined() || terminated.dim() != 1 || terminated.size(0) != obs.size(0))
    fail("termination rule must return one flag per row [{}], got {}", obs.size(0),
         terminated.defined() ? shape_of(terminated) : "nothing");
  return {predicted.next_obs, predicted.reward, terminated.to(torch::kBool)};
}

}  // namespace tom::models
