#include "tom/backbones/mbpo_trainer.hpp"

#include <algorithm>

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/phase_timer.hpp"

namespace tom::backbones {

bool update_burst_due(std::int64_t epoch_updates, std::int64_t epoch_step, double max_updates_per_step) {
  return max_updates_per_step <= 0 ||
         static_cast<double>(epoch_updates) <= max_updates_per_step * static_cast<double>(epoch_step);
}

MbpoTrainer::MbpoTrainer(const MbpoSettings& mbpo, const agents::SacSettings& sac,
                         std::unique_ptr<model_learning::Stage> learning, std::unique_ptr<envs::Env> env,
                         TerminationFn is_terminal, std::uint64_t seed, torch::Device device)
    : settings_(mbpo),
      explore_uniformly_(mbpo.exploration == "uniform"),
      device_(device),
      core_(mbpo.replay_capacity, sac, std::move(env), seed, device, time_limit_ends_from_name(mbpo.time_limit_ends)),
      learning_(std::move(learning)),
      is_terminal_(std::move(is_terminal)),
      gen_(at::detail::createCPUGenerator(seed + 2)) {
  if (settings_.rollout_max_epoch <= settings_.rollout_min_epoch && settings_.rollout_max_length != settings_.rollout_min_length)
    fail("mbpo.rollout_max_epoch ({}) must exceed mbpo.rollout_min_epoch ({}) when the rollout length grows",
         settings_.rollout_max_epoch, settings_.rollout_min_epoch);
  if (!learning_) fail("MBPO needs a model-learning stage");
  model_buffer_ = std::make_unique<data::ReplayBuffer>(model_buffer_capacity(), core_.replay().obs_dim(),
                                                       core_.replay().action_dim(), device);
}

int MbpoTrainer::rollout_length() const {
  // Epochs count from the end of exploration, as in MBPO's code.
  const double epoch = static_cast<double>(std::max<std::int64_t>(0, env_steps() - settings_.random_steps) /
                                           settings_.epoch_length);
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

bool MbpoTrainer::model_fit_due() const {
  return env_steps() >= settings_.random_steps && env_steps() % settings_.model_train_freq == 0;
}

void MbpoTrainer::step() {
  if (model_fit_due()) {
    const agents::Sac& agent = core_.agent();
    const model_learning::Fitted fitted = learning_->fit(
        {core_.replay(), {&agent, &agent, &agent}, env_steps(), settings_.random_steps, gen_});
    resize_model_buffer();
    roll_out(fitted);
  }
  if (env_steps() % settings_.epoch_length == 0) epoch_updates_ = 0;
  {
    PhaseTimer timer(counters_.env_s);
    core_.collect(/*explore_uniformly=*/env_steps() < settings_.random_steps && explore_uniformly_);
  }
  if (env_steps() > settings_.random_steps && model_buffer_->size() > 0) update_agent();
}

void MbpoTrainer::resize_model_buffer() {
  // The model buffer holds model_retain_epochs epochs at the current length: rebuild it
  // (keeping the newest rollouts) when the schedule lengthens the rollouts.
  const std::int64_t capacity = model_buffer_capacity();
  if (capacity == model_buffer_->capacity()) return;
  torch::NoGradGuard no_grad;
  auto resized = std::make_unique<data::ReplayBuffer>(capacity, model_buffer_->obs_dim(),
                                                      model_buffer_->action_dim(), device_);
  if (model_buffer_->size() > 0) {
    const auto order = torch::argsort(model_buffer_->insertion_index());
    const data::Batch old = model_buffer_->all();
    resized->add_batch(old.obs.index_select(0, order), old.action.index_select(0, order),
                       old.reward.index_select(0, order), old.next_obs.index_select(0, order),
                       old.terminated.index_select(0, order));
  }
  model_buffer_ = std::move(resized);
}

void MbpoTrainer::roll_out(const model_learning::Fitted& fitted) {
  PhaseTimer timer(counters_.rollout_s);
  torch::NoGradGuard no_grad;
  torch::Tensor obs = core_.replay().sample_weighted(settings_.rollout_batch_size, fitted.start_weights, gen_).obs;
  for (int t = 0; t < rollout_length() && obs.size(0) > 0; ++t) {
    const torch::Tensor action = core_.agent().sample_actions(obs, gen_).action;
    const models::ModelStep step = models::sample_step(learning_->model(), obs, action, is_terminal_, fitted.sample);
    const torch::Tensor finite = torch::isfinite(step.next_obs).all(1) & torch::isfinite(step.reward);
    const auto kept = finite.nonzero().squeeze(1);
    const double dropped = static_cast<double>(obs.size(0) - kept.size(0));
    counters_.nonfinite_predictions += dropped;
    if (dropped > settings_.max_nonfinite_fraction * static_cast<double>(obs.size(0)))
      fail("the dynamics model diverged: {} of {} predicted transitions are NaN/inf at step {} (rollout step {}); "
           "the last good checkpoint is kept",
           dropped, obs.size(0), env_steps(), t + 1);
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
  if (!update_burst_due(epoch_updates_, (env_steps() - 1) % settings_.epoch_length, settings_.max_updates_per_step))
    return;
  PhaseTimer timer(counters_.sac_s);
  const data::ReplayBuffer& replay = core_.replay();
  const int batch_size = core_.agent().settings().batch_size;
  const auto real = static_cast<std::int64_t>(settings_.real_ratio * batch_size);
  const double model_data = learning_->model_data_probability(
      std::max<std::int64_t>(0, env_steps() - settings_.random_steps) / settings_.epoch_length);
  for (int i = 0; i < settings_.updates_per_step; ++i) {
    const data::Batch r = replay.sample(real, gen_);
    // The TOM code's VaGraM runs train some batches on their real part alone.
    const bool real_only =
        model_data < 1.0 && real > 0 && torch::rand({}, gen_, torch::kFloat64).item<double>() >= model_data;
    if (real_only) {
      core_.update(r);
    } else {
      const data::Batch m = model_buffer_->sample(batch_size - real, gen_);
      core_.update({torch::cat({r.obs, m.obs}), torch::cat({r.action, m.action}), torch::cat({r.reward, m.reward}),
                    torch::cat({r.next_obs, m.next_obs}), torch::cat({r.terminated, m.terminated})});
    }
    ++epoch_updates_;
  }
  learning_->policy_updated(replay.total_added());
}

void MbpoTrainer::report(Figures& out) const {
  // The columns keep the order metrics.csv has always had.
  const model_learning::FitWork& work = learning_->work();
  core_.report(out);
  out.add(learning_->last_fit());
  out("rollout_length", static_cast<double>(rollout_length()));
  out("model_buffer_size", static_cast<double>(model_buffer_->size()));
  out("sac_updates", static_cast<double>(core_.updates()));
  out("model_fits", work.fits);
  out("model_gradient_steps", work.gradient_steps);
  out("model_transitions", counters_.model_transitions);
  out("nonfinite_predictions", counters_.nonfinite_predictions);
  out("time_env_s", counters_.env_s);
  out("time_sac_s", counters_.sac_s);
  out("time_model_fit_s", work.fit_s);
  out("time_rollout_s", counters_.rollout_s);
  out("time_objective_s", work.objective_s);
  out("model_fresh_mse", work.fresh_mse);
  out.add(learning_->weights());
  learning_->report_objective(out);
}

namespace {

// The trainer's own counters besides the named groups.
struct LoopState {
  std::int64_t epoch_updates = 0, model_buffer_capacity = 0;
  template <class V>
  void visit(V& v) {
    v("epoch_updates", epoch_updates);
    v("model_buffer_capacity", model_buffer_capacity);
  }
};

}  // namespace

void MbpoTrainer::save(torch::serialize::OutputArchive& archive) const {
  core_.save(archive);
  learning_->save(archive);
  torch::serialize::OutputArchive model_buffer;
  model_buffer_->save(model_buffer);
  archive.write("model_buffer", model_buffer);
  archive.write("gen", gen_.get_state());
  save_fields(archive, "loop", LoopState{epoch_updates_, model_buffer_->capacity()});
  save_fields(archive, "counters", counters_);
}

void MbpoTrainer::load(torch::serialize::InputArchive& archive) {
  learning_->load(archive);  // first: it names a checkpoint of another objective
  core_.load(archive);
  LoopState loop;
  load_fields(archive, "loop", loop, "MBPO");
  epoch_updates_ = loop.epoch_updates;
  torch::serialize::InputArchive model_buffer;
  archive.read("model_buffer", model_buffer);
  model_buffer_ = std::make_unique<data::ReplayBuffer>(loop.model_buffer_capacity, core_.replay().obs_dim(),
                                                       core_.replay().action_dim(), device_);
  model_buffer_->load(model_buffer);
  gen_.set_state(read_tensor(archive, "gen", "MBPO"));
  load_fields(archive, "counters", counters_, "MBPO");
}

}  // namespace tom::backbones
