#include "tom/objectives/tom_objective.hpp"

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"

namespace tom::objectives {

TomObjective::TomObjective(const TomSettings& settings, const TomDualSettings& dual,
                           const DiscriminatorSettings& discriminator, int obs_dim, int action_dim,
                           torch::Device device)
    : settings_(settings),
      obs_dim_(obs_dim),
      action_dim_(action_dim),
      device_(device),
      discriminator_(discriminator, obs_dim, action_dim, device),
      dual_(dual, obs_dim, action_dim, device) {}

torch::Tensor TomObjective::log_ratio_reward(const Transitions& buffer, const torch::Tensor& newest, bool fit,
                                             torch::Generator& gen) {
  const std::int64_t n = buffer.s.size(0), pool = newest.size(0);
  torch::Tensor in_pool = torch::zeros({n}, buffer.s.options());
  in_pool.index_fill_(0, newest, 1.0);
  if (!discriminator_.settings().enabled) return in_pool;
  if (fit) {
    const Transitions recent{buffer.s.index_select(0, newest), buffer.a.index_select(0, newest),
                             buffer.s_next.index_select(0, newest)};
    last_.discriminator_loss = discriminator_.fit(recent, buffer, gen);
  }
  const torch::Tensor reward = discriminator_.log_ratio(buffer);
  // Accuracy as a balanced classifier of pool against the rest of the buffer.
  const auto says_recent = (reward > 0).to(torch::kFloat32);
  const double rest = static_cast<double>(n - pool);
  last_.discriminator_accuracy =
      rest > 0 ? 0.5 * ((says_recent * in_pool).sum().item<double>() / static_cast<double>(pool) +
                        ((1 - says_recent) * (1 - in_pool)).sum().item<double>() / rest)
               : (says_recent.mean().item<double>());
  return reward;
}

namespace {

// The replay buffer's transitions on the device, with the log-ratio reward, and its
// episode start states.
struct BufferTensors {
  const torch::Tensor &s, &a, &reward, &s_next, &done, &s0;
};

// The dual's samplers over the buffer: start states, transitions with their reward, and
// next actions of the policy, all drawn from `gen`. They refer to `buffer`, `policy` and
// `gen`, which must outlive them.
DualData buffer_samplers(BufferTensors buffer, const agents::ActionSampler& policy, torch::Device device,
                         torch::Generator& gen) {
  DualData data;
  data.sample_initial_states = [buffer, device, &gen](std::int64_t count) {
    return buffer.s0.index_select(0, torch::randint(buffer.s0.size(0), {count}, gen, torch::kLong).to(device));
  };
  data.sample_replay = [buffer, device, &gen](std::int64_t count) {
    const auto rows = torch::randint(buffer.s.size(0), {count}, gen, torch::kLong).to(device);
    return ReplayBatch{buffer.s.index_select(0, rows), buffer.a.index_select(0, rows),
                       buffer.reward.index_select(0, rows), buffer.s_next.index_select(0, rows),
                       buffer.done.index_select(0, rows)};
  };
  data.sample_next_actions = [&policy, device, &gen](const torch::Tensor& states, std::int64_t count) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> actions;
    for (std::int64_t i = 0; i < count; ++i)
      actions.push_back(policy.sample_actions(states, gen).action.to(device, torch::kFloat32));
    return NextActions{torch::stack(actions), {}};
  };
  return data;
}

}  // namespace

FitPlan TomObjective::plan(const FitContext& context) {
  const data::Batch all = context.replay.all();
  const std::int64_t n = all.obs.size(0);
  if (n == 0) fail("TOM: the replay buffer is empty");
  const bool waiting =
      settings_.wait_for_recent_pool && context.env_steps - context.exploration_steps < settings_.recent_pool;
  if (waiting && settings_.starts_while_waiting == "uniform")
    return {replay_transitions(context.replay)};  // plain likelihood until the pool holds the current policy's data
  const torch::Tensor starts = context.replay.episode_start_obs();
  if (starts.size(0) == 0) fail("TOM: the replay buffer holds no episode start states");
  const auto on_device = [&](const torch::Tensor& t) { return t.to(device_, torch::kFloat32); };
  const torch::Tensor s = on_device(all.obs), a = on_device(all.action), s_next = on_device(all.next_obs),
                      done = on_device(all.terminated), s0 = on_device(starts);

  // The recent pool: slots of the newest transitions.
  const std::int64_t pool = std::min(settings_.recent_pool, n);
  const torch::Tensor newest = std::get<1>(context.replay.insertion_index().topk(pool)).to(device_);
  const torch::Tensor reward = log_ratio_reward({s, a, s_next}, newest, /*fit=*/!waiting, context.gen);
  last_.reward_mean = reward.mean().item<double>();

  const agents::ActionSampler& policy = context.policy("tom");
  const auto k = dual_.settings().next_actions;
  const DualData data = buffer_samplers({s, a, reward, s_next, done, s0}, policy, device_, context.gen);
  const auto next_actions = [&](const DualData& from) {
    return dual_.needs_next_actions() ? from.sample_next_actions(s_next, k) : NextActions{};
  };
  const auto buffer_weights = [&](bool clip) {
    return dual_.weights(s, a, reward, s_next, done, next_actions(data), clip).to(torch::kCPU);
  };
  if (waiting) {  // plain likelihood; the starts weighted by the dual as it is
    FitPlan plan{replay_transitions(context.replay)};
    plan.start_weights = data::Weights::checked(buffer_weights(/*clip=*/false), n, "objective 'tom'");
    return plan;
  }
  if (!settings_.warm_start) dual_ = TomDual(dual_.settings(), obs_dim_, action_dim_, device_);
  last_.dual = dual_.train(data, dual_.settings().steps);
  ++plans_;
  if (settings_.reference_steps > 0) {
    // Its own generator: the run is the same with or without the diagnostic.
    torch::Generator reference_gen = at::detail::createCPUGenerator(static_cast<std::uint64_t>(plans_));
    const DualData reference_data = buffer_samplers({s, a, reward, s_next, done, s0}, policy, device_, reference_gen);
    measure_reference_gap(reference_data, s, a, reward, s_next, done, next_actions(reference_data));
  }
  FitPlan plan{replay_transitions(context.replay)};
  plan.fit_weights = data::Weights::checked(buffer_weights(/*clip=*/true), n, "objective 'tom'");
  plan.start_weights = settings_.start_weights == "fresh"
                           ? data::Weights::checked(buffer_weights(/*clip=*/false), n, "objective 'tom'")
                           : plan.fit_weights;
  plan.holdout_ratio = settings_.holdout_ratio;
  return plan;
}

void TomObjective::measure_reference_gap(const DualData& data, const torch::Tensor& s, const torch::Tensor& a,
                                         const torch::Tensor& reward, const torch::Tensor& s_next,
                                         const torch::Tensor& done, const NextActions& next) {
  TomDualSettings longer = dual_.settings();
  longer.schedule = "converge";
  // The copy's (overwritten) initialisation must not draw from the global generator.
  auto global = at::detail::getDefaultCPUGenerator();
  const auto global_state = global.get_state();
  TomDual reference(longer, obs_dim_, action_dim_, device_);
  global.set_state(global_state);
  torch::serialize::OutputArchive state;
  dual_.save(state);
  torch::serialize::InputArchive copy = reread(state);
  reference.load(copy);
  last_.reference_steps = reference.train(data, settings_.reference_steps).steps;
  // Both unclipped and at mean 1 over the buffer: the buffer is a sample of the replay
  // distribution, so the mean absolute difference is the weighted L1.
  const auto normalised = [&](const TomDual& dual) {
    const torch::Tensor w = dual.weights(s, a, reward, s_next, done, next, /*clip=*/false);
    return w / w.mean();
  };
  last_.reference_gap = (normalised(dual_) - normalised(reference)).abs().mean().item<double>();
}

void TomObjective::save(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive dual, discriminator;
  dual_.save(dual);
  discriminator_.save(discriminator);
  archive.write("dual", dual);
  archive.write("discriminator", discriminator);
  write_int(archive, "plans", plans_);
  save_fields(archive, "last_plan", last_);
}

void TomObjective::load(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive dual, discriminator;
  if (!archive.try_read("dual", dual) || !archive.try_read("discriminator", discriminator))
    fail("TOM checkpoint is missing its dual or discriminator (was the run made with another objective?)");
  dual_.load(dual);
  discriminator_.load(discriminator);
  plans_ = read_int(archive, "plans", "TOM");
  load_fields(archive, "last_plan", last_, "TOM");
}

}  // namespace tom::objectives
