#include "tom/backbones/pets_trainer.hpp"

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/core/phase_timer.hpp"
#include "tom/objectives/make_objective.hpp"

namespace tom::backbones {

PetsTrainer::PetsTrainer(const PetsSettings& pets, const agents::CemSettings& cem,
                         const agents::DistillSettings& distill, std::unique_ptr<model_learning::Stage> learning, std::unique_ptr<envs::Env> env,
                         TerminationFn is_terminal, std::uint64_t seed, torch::Device device)
    : settings_(pets),
      propagation_(pets.propagation == "ts1"           ? Propagation::ts1
                   : pets.propagation == "expectation" ? Propagation::expectation
                                                       : Propagation::ts_inf),
      collector_(std::move(env), seed),
      replay_(pets.replay_capacity, collector_.env().spec().obs_dim, collector_.env().spec().action_dim, device),
      learning_(std::move(learning)),
      is_terminal_(std::move(is_terminal)),
      planner_(cem, collector_.env().spec().action_low, collector_.env().spec().action_high, seed + 3, device),
      eval_planner_(cem, collector_.env().spec().action_low, collector_.env().spec().action_high, seed + 4, device),
      distilled_(distill, collector_.env().spec().obs_dim, collector_.env().spec().action_low,
                 collector_.env().spec().action_high, seed + 5, device),
      gen_(at::detail::createCPUGenerator(seed + 2)) {
  if (!learning_) fail("PETS needs a model-learning stage");
  const objectives::Views needs = objectives::objective_entry(learning_->objective().name()).needs;
  if (needs.value) fail("{}", objectives::missing_view(learning_->objective().name(), {.policy = true, .snapshots = true}, "pets"));
  distills_ = needs.policy || needs.snapshots;
  const std::int64_t blocks = propagation_ == Propagation::ts_inf ? learning_->model().predictors() : 1;
  if (cem.particles % blocks != 0)
    fail("cem.particles ({}) must be a multiple of the model's {} elites for ts-inf propagation (each elite keeps "
         "an equal share of the particles)",
         cem.particles, blocks);
}

bool PetsTrainer::fit_due(bool episode_ended) const {
  if (env_steps_ < settings_.random_steps) return false;
  // The first fit comes as exploration ends, whatever the schedule.
  if (learning_->work().fits == 0) return true;
  return settings_.train_every > 0 ? env_steps_ % settings_.train_every == 0 : episode_ended;
}

std::vector<double> PetsTrainer::plan(agents::CemPlanner& planner, std::span<const double> obs) {
  models::DynamicsModel& model = learning_->model();
  const agents::ParticleStep step = [&](const torch::Tensor& state, const torch::Tensor& action, torch::Generator& gen) {
    const models::Prediction next = propagation_ == Propagation::ts_inf ? model.sample_by_block(state, action, gen)
                                    : propagation_ == Propagation::ts1  ? model.sample(state, action, gen)
                                                                        : model.mean(state, action);
    return agents::ParticleStepResult{next.next_obs, next.reward, is_terminal_(state, action, next.next_obs)};
  };
  const auto blocks = static_cast<int>(propagation_ == Propagation::ts_inf ? model.predictors() : 1);
  return planner.act(obs, step, blocks);
}

void PetsTrainer::fit_model() {
  if (distills_) {
    PhaseTimer timer(counters_.distill_s);
    const data::Batch recent = replay_.newest(std::min(replay_.size(), distilled_.settings().window));
    last_distill_ = distilled_.fit(recent.obs, recent.action, gen_);
  }
  learning_->fit({replay_, {.policy = &distilled_, .snapshots = &distilled_}, env_steps_, settings_.random_steps,
                  gen_});
}

void PetsTrainer::step() {
  if (fit_pending_) {
    fit_model();
    fit_pending_ = false;
  }
  std::vector<double> action;
  if (learning_->work().fits == 0) {
    action = collector_.random_action();
  } else {
    PhaseTimer timer(counters_.plan_s);
    action = plan(planner_, collector_.obs());
    counters_.planned_return = planner_.last_elite_return();
  }
  const std::int64_t episodes = collector_.episodes();
  {
    PhaseTimer timer(counters_.env_s);
    collector_.step(action, replay_);
  }
  ++env_steps_;
  const bool episode_ended = collector_.episodes() > episodes;
  if (episode_ended) planner_.reset();
  fit_pending_ = fit_due(episode_ended);
}

std::vector<double> PetsTrainer::act_deterministic(std::span<const double> obs) {
  // Before the first fit there is no model to plan with: the middle of the bounds.
  if (learning_->work().fits == 0) {
    const auto& spec = collector_.env().spec();
    std::vector<double> middle(spec.action_low.size());
    for (std::size_t i = 0; i < middle.size(); ++i) middle[i] = 0.5 * (spec.action_low[i] + spec.action_high[i]);
    return middle;
  }
  return plan(eval_planner_, obs);
}

void PetsTrainer::report(Figures& out) const {
  out("train_return_last", collector_.last_episode_return());
  out("episodes", static_cast<double>(collector_.episodes()));
  out.add(learning_->last_fit());
  out("model_fits", learning_->work().fits);
  out("model_gradient_steps", learning_->work().gradient_steps);
  out("time_model_fit_s", learning_->work().fit_s);
  out("time_objective_s", learning_->work().objective_s);
  out("model_fresh_mse", learning_->work().fresh_mse);
  out.add(counters_);
  // Only a run that distils has the distilled policy's figures: zeros would read as a perfect fit.
  if (distills_) out.add(last_distill_);
  out.add(learning_->weights());
  learning_->report_objective(out);
}

namespace {

struct PetsLoopState {
  std::int64_t env_steps = 0, fit_pending = 0;
  template <class V>
  void visit(V& v) {
    v("env_steps", env_steps);
    v("fit_pending", fit_pending);
  }
};

}  // namespace

void PetsTrainer::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive collector, replay, planner, eval_planner, distilled;
  collector_.save(collector);
  replay_.save(replay);
  planner_.save(planner);
  eval_planner_.save(eval_planner);
  distilled_.save(distilled);
  archive.write("distilled_policy", distilled);
  save_fields(archive, "last_distill", last_distill_);
  archive.write("collector", collector);
  archive.write("replay", replay);
  archive.write("planner", planner);
  archive.write("eval_planner", eval_planner);
  learning_->save(archive);
  archive.write("gen", gen_.get_state());
  save_fields(archive, "loop", PetsLoopState{env_steps_, fit_pending_ ? 1 : 0});
  save_fields(archive, "counters", counters_);
}

void PetsTrainer::load(torch::serialize::InputArchive& archive) {
  learning_->load(archive);
  torch::serialize::InputArchive collector, replay, planner, eval_planner, distilled;
  if (!archive.try_read("collector", collector) || !archive.try_read("replay", replay) ||
      !archive.try_read("planner", planner) || !archive.try_read("eval_planner", eval_planner) ||
      !archive.try_read("distilled_policy", distilled))
    fail("the checkpoint is not a PETS run's (no collector, replay buffer, planners or distilled policy)");
  distilled_.load(distilled);
  load_fields(archive, "last_distill", last_distill_, "PETS");
  collector_.load(collector);
  replay_.load(replay);
  planner_.load(planner);
  eval_planner_.load(eval_planner);
  gen_.set_state(read_tensor(archive, "gen", "PETS"));
  PetsLoopState loop;
  load_fields(archive, "loop", loop, "PETS");
  env_steps_ = loop.env_steps;
  fit_pending_ = loop.fit_pending != 0;
  load_fields(archive, "counters", counters_, "PETS");
}

}  // namespace tom::backbones
