#include "tom/objectives/finite_verify.hpp"

#include <cmath>
#include <limits>

#include "tom/core/error.hpp"

namespace tom::objectives {
namespace {

// Draws an index per row of `probs` ([rows, n]); [rows, count].
torch::Tensor sample_rows(const torch::Tensor& probs, std::int64_t count, at::Generator& gen) {
  return torch::multinomial(probs, count, /*replacement=*/true, gen);
}

}  // namespace

std::vector<VerificationForm> verification_forms() {
  return {{"conjugate-exact", "conjugate", 1, true},
          {"conjugate-k1", "conjugate", 1, false},
          {"conjugate-k16", "conjugate", 16, false},
          {"conjugate-u", "conjugate-u", 1, false, 0.35, 3.0, 4},
          {"minimax", "minimax", 1, false, 0.25, 2.0}};
}

const VerificationForm& verification_form(const std::string& name) {
  static const std::vector<VerificationForm> forms = verification_forms();
  for (const auto& form : forms)
    if (form.name == name) return form;
  std::vector<std::string> names;
  for (const auto& form : forms) names.push_back(form.name);
  fail_unknown("unknown dual form '{}' (valid: {})", name, join(names));
}

RatioErrors ratio_errors(const RatioProblem& problem, const torch::Tensor& estimate) {
  if (estimate.sizes() != problem.true_ratio.sizes())
    fail("ratio estimate has shape {} (expected {})", c10::str(estimate.sizes()),
         c10::str(problem.true_ratio.sizes()));
  const torch::Tensor error = (estimate.to(torch::kFloat64) - problem.true_ratio).abs();
  const torch::Tensor relative = error / problem.true_ratio;
  return {relative.max().item<double>(), relative.mean().item<double>(),
          (problem.replay * error).sum().item<double>()};
}

DualData finite_dual_data(const RatioProblem& problem, bool exact_next, at::Generator gen) {
  const auto n = problem.mdp.states(), m = problem.mdp.actions();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const torch::Tensor state_eye = torch::eye(n, f32), action_eye = torch::eye(m, f32);
  const torch::Tensor replay_flat = problem.replay.reshape({n * m}).to(torch::kFloat32);
  const torch::Tensor transition_rows = problem.mdp.transition.reshape({n * m, n}).to(torch::kFloat32);
  const torch::Tensor initial = problem.mdp.initial.to(torch::kFloat32).unsqueeze(0);
  const torch::Tensor policy = problem.policy.to(torch::kFloat32);

  DualData data;
  data.sample_initial_states = [=](std::int64_t count) mutable {
    return state_eye.index_select(0, sample_rows(initial, count, gen).squeeze(0));
  };
  data.sample_replay = [=](std::int64_t count) mutable {
    const torch::Tensor pair = sample_rows(replay_flat.unsqueeze(0), count, gen).squeeze(0);
    const torch::Tensor next = sample_rows(transition_rows.index_select(0, pair), 1, gen).squeeze(1);
    return ReplayBatch{state_eye.index_select(0, pair.div(m, "floor")),
                       action_eye.index_select(0, pair.remainder(m)), torch::zeros({count}, f32),
                       state_eye.index_select(0, next), torch::zeros({count}, f32)};
  };
  data.sample_next_actions = [=](const torch::Tensor& states, std::int64_t k) mutable {
    const auto rows = states.size(0);
    const torch::Tensor pi = policy.index_select(0, states.argmax(1));
    if (exact_next)
      return NextActions{action_eye.unsqueeze(1).expand({m, rows, m}), pi.t()};
    const torch::Tensor picks = sample_rows(pi, k, gen).t().reshape({k * rows});
    return NextActions{action_eye.index_select(0, picks).view({k, rows, m}), {}};
  };
  return data;
}

torch::Tensor estimated_ratio(const TomDual& dual, const RatioProblem& problem) {
  const auto n = problem.mdp.states(), m = problem.mdp.actions();
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  // Every transition (s, a, s') with P(s'|s,a) > 0.
  const torch::Tensor p = problem.mdp.transition.reshape({n * m * n});
  const torch::Tensor index = p.nonzero().squeeze(1);
  const torch::Tensor pair = index.div(n, "floor"), next = index.remainder(n);
  const auto rows = index.size(0);
  const torch::Tensor state_eye = torch::eye(n, f32), action_eye = torch::eye(m, f32);
  const NextActions exact{action_eye.unsqueeze(1).expand({m, rows, m}),
                          problem.policy.to(torch::kFloat32).index_select(0, next).t()};
  // Clipping and normalising are off in verify_form, so these are the raw f*'(e) or w(s,a)
  // (kl's exp(e) up to scale).
  const torch::Tensor w =
      dual.weights(state_eye.index_select(0, pair.div(m, "floor")),
                   action_eye.index_select(0, pair.remainder(m)), torch::zeros({rows}, f32),
                   state_eye.index_select(0, next), torch::zeros({rows}, f32), exact)
          .to(torch::kFloat64);
  torch::Tensor ratio = torch::zeros({n * m}, torch::kFloat64).index_add_(0, pair, w * p.index_select(0, index));
  ratio = ratio.view({n, m});
  if (dual.divergence().scale_free()) ratio = ratio / (problem.replay * ratio).sum();
  return ratio;
}

TomDualSettings verification_defaults() {
  TomDualSettings s;
  s.hidden = 64;
  s.lr = 2e-3;
  s.l2 = 0.0;
  s.ema = 0.999;
  s.schedule = "converge";
  s.steps = 80000;
  s.check_every = 1000;
  s.probe_rows = 4096;
  return s;
}

TomDualSettings verification_settings(const VerificationForm& form, TomDualSettings base) {
  base.form = form.form;
  base.next_actions = form.next_actions;
  base.lr *= form.lr_scale;
  base.steps = static_cast<int>(std::lround(base.steps * form.steps_scale));
  base.batch *= form.batch_scale;
  base.clip_max = std::numeric_limits<float>::max();
  return base;
}

Verification verify_form(const RatioProblem& problem, const VerificationForm& form,
                        TomDualSettings base, std::uint64_t seed) {
  base.gamma = problem.mdp.gamma;  // the dual discounts as the MDP does
  const TomDualSettings settings = verification_settings(form, std::move(base));
  torch::manual_seed(seed);
  TomDual dual(settings, problem.mdp.states(), problem.mdp.actions());
  const DualTrainReport training =
      dual.train(finite_dual_data(problem, form.exact_next, at::detail::createCPUGenerator(seed)), settings.steps);
  return {ratio_errors(problem, estimated_ratio(dual, problem)), training};
}

}  // namespace tom::objectives
