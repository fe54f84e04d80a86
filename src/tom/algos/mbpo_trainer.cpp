#include "tom/algos/mbpo_trainer.hpp"

#include <algorithm>
#include <chrono>

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::algos {
namespace {

class PhaseTimer {
 public:
  explicit PhaseTimer(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~PhaseTimer() { total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

bool update_burst_due(std::int64_t epoch_updates, std::int64_t epoch_step, double max_updates_per_step) {
  return max_updates_per_step <= 0 ||
         static_cast<double>(epoch_updates) <= max_updates_per_step * static_cast<double>(epoch_step);
}

std::unique_ptr<models::DynamicsModel> make_model(const MbpoSettings& mbpo, const models::EnsembleSettings& ensemble,
                                                  const models::MdnSettings& mdn, int obs_dim, int action_dim,
                                                  std::uint64_t seed, torch::Device device) {
  if (mbpo.model == "mdn")
    return std::make_unique<models::MixtureDensityNetwork>(obs_dim, action_dim, mdn, seed, device);
  return std::make_unique<models::ProbabilisticEnsemble>(obs_dim, action_dim, ensemble, seed, device);
}

MbpoTrainer::MbpoTrainer(const MbpoSettings& mbpo, const agents::SacSettings& sac,
                         std::unique_ptr<models::DynamicsModel> model,
                         std::unique_ptr<objectives::ModelObjective> objective, std::unique_ptr<envs::Env> env,
                         TerminationFn is_terminal, std::uint64_t seed, torch::Device device)
    : settings_(mbpo),
      device_(device),
      collector_(std::move(env), seed),
      replay_(mbpo.replay_capacity, collector_.env().spec().obs_dim, collector_.env().spec().action_dim, device),
      agent_(sac, collector_.env().spec().obs_dim, collector_.env().spec().action_dim,
             collector_.env().spec().action_low, collector_.env().spec().action_high, device, seed),
      model_(std::move(model)),
      objective_(objective ? std::move(objective) : std::make_unique<objectives::MleObjective>()),
      is_terminal_(std::move(is_terminal)),
      gen_(at::detail::createCPUGenerator(seed + 2)) {
  if (settings_.rollout_max_epoch <= settings_.rollout_min_epoch && settings_.rollout_max_length != settings_.rollout_min_length)
    fail("mbpo.rollout_max_epoch ({}) must exceed mbpo.rollout_min_epoch ({}) when the rollout length grows",
         settings_.rollout_max_epoch, settings_.rollout_min_epoch);
  model_buffer_ = std::make_unique<data::ReplayBuffer>(model_buffer_capacity(), replay_.obs_dim(),
                                                       replay_.action_dim(), device);
  last_weights_.age_bins.assign(kWeightBins, 1.0);
}

int MbpoTrainer::rollout_length() const {
  // Epochs count from the end of exploration, as in MBPO's code.
  const double epoch =
      static_cast<double>(std::max<std::int64_t>(0, env_steps_ - settings_.random_steps) / settings_.epoch_length);
  const double span = settings_.rollout_max_epoch - settings_.rollout_min_epoch;
  const double progress = span > 0 ? std::clamp((epoch - settings_.rollout_min_epoch) / span, 0.0, 1.0)
                                   : (epoch >= settings_.rollout_max_epoch ? 1.0 : 0.0);
  return static_cast<int>(settings_.rollout_min_length +
                          progress * (settings_.rollout_max_length - settings_.rollout_min_length));
}

std::int64_t MbpoTrainer::model_buffer_capacity() const {
  const std::int64_t rollouts_per_epoch =
      settings_.rollout_batch_size * std::max<std::int64_t>(1, settings_.epoch_length / settings_.model_train_freq);
  return settings_.model_retain_epochs * rollouts_per_epoch * rollout_length();
}

void MbpoTrainer::step() {
  if (env_steps_ >= settings_.random_steps && env_steps_ % settings_.model_train_freq == 0) {
    const data::Batch all = replay_.all();
    measure_fresh_error(all);
    const objectives::FitPlan plan = make_plan();
    record_weights(plan.fit_weights);
    fit_model(all, plan);
    rollout(plan);
  }
  if (env_steps_ % settings_.epoch_length == 0) epoch_updates_ = 0;
  {
    PhaseTimer timer(counters_.env_s);
    const bool uniform = env_steps_ < settings_.random_steps && settings_.exploration == "uniform";
    const auto action = uniform ? collector_.random_action() : agent_.act(collector_.obs(), /*deterministic=*/false);
    collector_.step(action, replay_);
  }
  ++env_steps_;
  if (env_steps_ > settings_.random_steps && model_buffer_->size() > 0) update_agent();
}

objectives::FitPlan MbpoTrainer::make_plan() {
  PhaseTimer timer(counters_.objective_s);
  objectives::FitPlan plan = objective_->plan({replay_, agent_, env_steps_, settings_.random_steps, gen_});
  const auto n = replay_.size();
  const auto& name = objective_->name();
  if (plan.fit_weights.defined()) plan.fit_weights = objectives::checked_weights(plan.fit_weights, n, name);
  if (plan.start_weights.defined()) plan.start_weights = objectives::checked_weights(plan.start_weights, n, name);
  return plan;
}

void MbpoTrainer::record_weights(const torch::Tensor& fit_weights) {
  last_weights_ = objectives::summarise_weights(fit_weights, replay_.insertion_index(), 1000, kWeightBins);
  std::vector<double> row{static_cast<double>(env_steps_)};
  row.insert(row.end(), last_weights_.age_bins.begin(), last_weights_.age_bins.end());
  weight_rows_.push_back(std::move(row));
}

void MbpoTrainer::fit_model(const data::Batch& all, const objectives::FitPlan& plan) {
  PhaseTimer timer(counters_.model_fit_s);
  models::Transitions data{all.obs, all.action, all.reward, all.next_obs, {}};
  torch::Tensor weights = plan.fit_weights;
  if (settings_.fit_data == "bootstrap") {
    // A resample of the buffer with replacement, as the authors' code fits on; each row
    // keeps its weight and its replay slot (for a custom loss's lookups).
    const auto rows = torch::randint(replay_.size(), {replay_.size()}, gen_, torch::kInt64);
    const auto on_data = rows.to(all.obs.device());
    data = {all.obs.index_select(0, on_data), all.action.index_select(0, on_data),
            all.reward.index_select(0, on_data), all.next_obs.index_select(0, on_data), rows};
    if (weights.defined()) weights = weights.index_select(0, rows);
  }
  last_fit_ = model_->fit(data, weights, plan.loss, plan.holdout_ratio);
  counters_.model_fits += 1;
  counters_.model_gradient_steps += static_cast<double>(last_fit_.gradient_steps);
  fitted_through_ = replay_.total_added();
}

void MbpoTrainer::measure_fresh_error(const data::Batch& all) {
  const std::int64_t fresh = std::min(replay_.size(), replay_.total_added() - fitted_through_);
  if (counters_.model_fits == 0 || fresh <= 0) return;
  torch::NoGradGuard no_grad;
  const torch::Tensor newness = replay_.insertion_index();  // larger = newer
  const auto rows = (newness >= replay_.size() - fresh).nonzero().squeeze(1);
  const auto obs = all.obs.index_select(0, rows), next_obs = all.next_obs.index_select(0, rows);
  const models::Prediction predicted = model_->mean(obs, all.action.index_select(0, rows));
  const double next_error = (predicted.next_obs - next_obs).square().sum().item<double>();
  const double reward_error = (predicted.reward - all.reward.index_select(0, rows)).square().sum().item<double>();
  fresh_mse_ = (next_error + reward_error) / static_cast<double>(fresh * (1 + replay_.obs_dim()));
}

std::vector<std::vector<double>> MbpoTrainer::take_weight_rows() { return std::exchange(weight_rows_, {}); }

void MbpoTrainer::rollout(const objectives::FitPlan& plan) {
  PhaseTimer timer(counters_.rollout_s);
  torch::NoGradGuard no_grad;
  // The model buffer holds model_retain_epochs epochs at the current length: rebuild it
  // (keeping the newest rollouts) when the schedule lengthens the rollouts.
  if (const std::int64_t capacity = model_buffer_capacity(); capacity != model_buffer_->capacity()) {
    auto resized = std::make_unique<data::ReplayBuffer>(capacity, replay_.obs_dim(), replay_.action_dim(), device_);
    if (model_buffer_->size() > 0) {
      const auto order = torch::argsort(model_buffer_->insertion_index());
      const data::Batch old = model_buffer_->all();
      resized->add_batch(old.obs.index_select(0, order), old.action.index_select(0, order),
                         old.reward.index_select(0, order), old.next_obs.index_select(0, order),
                         old.terminated.index_select(0, order));
    }
    model_buffer_ = std::move(resized);
  }
  torch::Tensor obs = plan.start_weights.defined()
                          ? replay_.sample_weighted(settings_.rollout_batch_size, plan.start_weights, gen_).obs
                          : replay_.sample(settings_.rollout_batch_size, gen_).obs;
  for (int t = 0; t < rollout_length() && obs.size(0) > 0; ++t) {
    const torch::Tensor action = agent_.sample_actions(obs, gen_).action;
    // A model whose loss shaped only its mean is stepped with the mean: its variances
    // (and the MDN's components) were never trained.
    const models::ModelStep step =
        models::sample_step(*model_, obs, action, is_terminal_, /*sample=*/plan.trains_distribution);
    const torch::Tensor finite = torch::isfinite(step.next_obs).all(1) & torch::isfinite(step.reward);
    const auto kept = finite.nonzero().squeeze(1);
    const double dropped = static_cast<double>(obs.size(0) - kept.size(0));
    counters_.nonfinite_predictions += dropped;
    if (dropped > settings_.max_nonfinite_fraction * static_cast<double>(obs.size(0)))
      fail("the dynamics model diverged: {} of {} predicted transitions are NaN/inf at step {} (rollout step {}); "
           "the last good checkpoint is kept",
           dropped, obs.size(0), env_steps_, t + 1);
    const torch::Tensor next_obs = step.next_obs.index_select(0, kept);
    const torch::Tensor terminated = step.terminated.index_select(0, kept);
    model_buffer_->add_batch(obs.index_select(0, kept), action.index_select(0, kept), step.reward.index_select(0, kept),
                             next_obs, terminated);
    counters_.model_transitions += static_cast<double>(kept.size(0));
    obs = next_obs.index_select(0, (~terminated).nonzero().squeeze(1));
  }
}

void MbpoTrainer::update_agent() {
  // A burst of updates_per_step updates on every env step at which this epoch's updates
  // so far are within max_updates_per_step per env step: with 20 and 5 (the TOM code), 20
  // updates on every 4th step; MBPO's own cap never binds (max_updates_per_step = 0).
  if (!update_burst_due(epoch_updates_, (env_steps_ - 1) % settings_.epoch_length, settings_.max_updates_per_step))
    return;
  PhaseTimer timer(counters_.sac_s);
  const int batch_size = agent_.settings().batch_size;
  const auto real = static_cast<std::int64_t>(settings_.real_ratio * batch_size);
  const double model_data = objective_->model_data_probability(
      std::max<std::int64_t>(0, env_steps_ - settings_.random_steps) / settings_.epoch_length);
  for (int i = 0; i < settings_.updates_per_step; ++i) {
    const data::Batch r = replay_.sample(real, gen_);
    // The TOM code's VaGraM runs train some batches on their real part alone.
    const bool real_only =
        model_data < 1.0 && real > 0 && torch::rand({}, gen_, torch::kFloat64).item<double>() >= model_data;
    if (real_only) {
      last_stats_ = agent_.update(r);
    } else {
      const data::Batch m = model_buffer_->sample(batch_size - real, gen_);
      last_stats_ = agent_.update({torch::cat({r.obs, m.obs}), torch::cat({r.action, m.action}),
                                   torch::cat({r.reward, m.reward}), torch::cat({r.next_obs, m.next_obs}),
                                   torch::cat({r.terminated, m.terminated})});
    }
    ++epoch_updates_;
    counters_.sac_updates += 1;
  }
  objective_->policy_updated(replay_.total_added());
}

std::vector<double> MbpoTrainer::act_deterministic(std::span<const double> obs) {
  return agent_.act(obs, /*deterministic=*/true);
}

std::vector<std::string> MbpoTrainer::metric_names() const {
  std::vector<std::string> names = {"train_return_last", "episodes", "q_loss", "policy_loss", "alpha", "alpha_loss", "entropy",
          "model_train_nll", "model_holdout_nll", "model_train_mse", "model_holdout_mse", "model_fit_epochs",
          "rollout_length", "model_buffer_size", "sac_updates", "model_fits", "model_gradient_steps",
          "model_transitions", "nonfinite_predictions", "time_env_s", "time_sac_s", "time_model_fit_s",
          "time_rollout_s", "time_objective_s", "model_fresh_mse", "weight_newest_mean", "weight_oldest_mean",
          "weight_ess", "weight_max"};
  const auto extra = objective_->metric_names();
  names.insert(names.end(), extra.begin(), extra.end());
  return names;
}

std::vector<double> MbpoTrainer::metric_values() const {
  std::vector<double> values = {collector_.last_episode_return(), static_cast<double>(collector_.episodes()), last_stats_.q_loss,
          last_stats_.policy_loss, agent_.alpha(), last_stats_.alpha_loss, last_stats_.entropy, last_fit_.train_nll,
          last_fit_.holdout_nll, last_fit_.train_mse, last_fit_.holdout_mse, static_cast<double>(last_fit_.epochs),
          static_cast<double>(rollout_length()), static_cast<double>(model_buffer_->size()), counters_.sac_updates,
          counters_.model_fits, counters_.model_gradient_steps, counters_.model_transitions,
          counters_.nonfinite_predictions, counters_.env_s, counters_.sac_s, counters_.model_fit_s,
          counters_.rollout_s, counters_.objective_s, fresh_mse_, last_weights_.newest_mean,
          last_weights_.oldest_mean, last_weights_.effective_sample_size, last_weights_.max};
  const auto extra = objective_->metric_values();
  values.insert(values.end(), extra.begin(), extra.end());
  return values;
}

void MbpoTrainer::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive collector, replay, model_buffer, agent, model;
  collector_.save(collector);
  replay_.save(replay);
  model_buffer_->save(model_buffer);
  agent_.save(agent);
  model_->save(model);
  archive.write("collector", collector);
  archive.write("replay", replay);
  archive.write("model_buffer", model_buffer);
  archive.write("agent", agent);
  archive.write("model", model);
  write_int(archive, "model_buffer_capacity", model_buffer_->capacity());
  archive.write("gen", gen_.get_state());
  write_int(archive, "env_steps", env_steps_);
  write_int(archive, "epoch_updates", epoch_updates_);
  agents::write_stats(archive, "last_stats", last_stats_);
  archive.write("last_fit", torch::tensor({last_fit_.train_nll, last_fit_.holdout_nll, last_fit_.train_mse,
                                           last_fit_.holdout_mse, static_cast<double>(last_fit_.epochs)},
                                          torch::kFloat64));
  const Counters& c = counters_;
  archive.write("counters", torch::tensor({c.sac_updates, c.model_fits, c.model_gradient_steps, c.model_transitions,
                                           c.nonfinite_predictions, c.env_s, c.sac_s, c.model_fit_s, c.rollout_s,
                                           c.objective_s},
                                          torch::kFloat64));
  torch::serialize::OutputArchive objective;
  objective_->save(objective);
  archive.write("objective", objective);
  write_string(archive, "objective_name", objective_->name());
  const objectives::WeightSummary& w = last_weights_;
  std::vector<double> summary{fresh_mse_, w.newest_mean, w.oldest_mean, w.effective_sample_size, w.max};
  summary.insert(summary.end(), w.age_bins.begin(), w.age_bins.end());
  archive.write("weight_summary", torch::tensor(summary, torch::kFloat64));
  write_int(archive, "fitted_through", fitted_through_);
}

void MbpoTrainer::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive collector, replay, model_buffer, agent, model;
  archive.read("collector", collector);
  archive.read("replay", replay);
  archive.read("model_buffer", model_buffer);
  archive.read("agent", agent);
  archive.read("model", model);
  collector_.load(collector);
  replay_.load(replay);
  model_buffer_ = std::make_unique<data::ReplayBuffer>(read_int(archive, "model_buffer_capacity", "MBPO"),
                                                       replay_.obs_dim(), replay_.action_dim(), device_);
  model_buffer_->load(model_buffer);
  agent_.load(agent);
  model_->load(model);
  gen_.set_state(read_tensor(archive, "gen", "MBPO"));
  env_steps_ = read_int(archive, "env_steps", "MBPO");
  epoch_updates_ = read_int(archive, "epoch_updates", "MBPO");
  last_stats_ = agents::read_stats(archive, "last_stats", "MBPO");
  const auto f = read_doubles(archive, "last_fit", 5, "MBPO");
  last_fit_.train_nll = f[0], last_fit_.holdout_nll = f[1], last_fit_.train_mse = f[2], last_fit_.holdout_mse = f[3];
  last_fit_.epochs = static_cast<int>(f[4]);
  const auto c = read_doubles(archive, "counters", 10, "MBPO");
  counters_ = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]};
  const std::string objective_name = read_string(archive, "objective_name", "MBPO");
  if (objective_name != objective_->name())
    fail("the checkpoint was written with model objective '{}', this run uses '{}'", objective_name,
         objective_->name());
  torch::serialize::InputArchive objective;
  archive.read("objective", objective);
  objective_->load(objective);
  const auto w = read_doubles(archive, "weight_summary", 5 + kWeightBins, "MBPO");
  fresh_mse_ = w[0];
  last_weights_ = {w[1], w[2], w[3], w[4], std::vector<double>(w.begin() + 5, w.end())};
  fitted_through_ = read_int(archive, "fitted_through", "MBPO");
}

}  // namespace tom::algos
