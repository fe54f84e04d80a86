#include "tom/objectives/finite_mdp.hpp"

#include "tom/core/error.hpp"

namespace tom::objectives {
namespace {

const auto kDouble = torch::TensorOptions().dtype(torch::kFloat64);

}  // namespace

FiniteMdp random_finite_mdp(const FiniteMdpOptions& options, at::Generator& gen) {
  const auto n = options.states, m = options.actions;
  if (n < 1 || m < 1) fail("finite MDP: states and actions must be positive (got {}, {})", n, m);
  if (!(options.gamma > 0.0 && options.gamma < 1.0))
    fail("finite MDP: gamma must be in (0, 1) (got {})", options.gamma);
  FiniteMdp mdp;
  mdp.gamma = options.gamma;
  mdp.transition = torch::zeros({n, m, n}, kDouble);
  const auto successors = options.stochastic ? std::min(options.successors, n) : 1;
  if (successors < 1) fail("finite MDP: successors must be positive (got {})", successors);
  // Each (s,a) reaches `successors` distinct random states with random probabilities.
  const torch::Tensor targets =
      torch::rand({n * m, n}, gen, kDouble).argsort(/*dim=*/1, /*descending=*/false).narrow(1, 0, successors);
  torch::Tensor probs = torch::rand({n * m, successors}, gen, kDouble) + 0.1;
  probs = probs / probs.sum(1, true);
  mdp.transition.view({n * m, n}).scatter_(1, targets, probs);
  // Full-support start distribution: every state then has positive occupancy.
  const torch::Tensor start = torch::rand({n}, gen, kDouble) + 0.5;
  mdp.initial = start / start.sum();
  return mdp;
}

torch::Tensor random_policy(std::int64_t states, std::int64_t actions, at::Generator& gen) {
  if (states < 1 || actions < 1)
    fail("finite MDP: policy needs positive sizes (got {}, {})", states, actions);
  return torch::softmax(torch::randn({states, actions}, gen, kDouble), 1);
}

torch::Tensor discounted_occupancy(const FiniteMdp& mdp, const torch::Tensor& policy) {
  const auto n = mdp.states(), m = mdp.actions();
  if (policy.sizes() != torch::IntArrayRef({n, m}))
    fail("finite MDP: policy has shape {} (expected [{}, {}])", c10::str(policy.sizes()),
         n, m);
  const torch::Tensor pi = policy.to(torch::kFloat64);
  // P_pi[s, s'] = sum_a pi(a|s) P(s'|s,a).
  const torch::Tensor p_pi = (pi.unsqueeze(2) * mdp.transition).sum(1);
  const torch::Tensor system = torch::eye(n, kDouble) - mdp.gamma * p_pi.t();
  const torch::Tensor state_occupancy =
      torch::linalg_solve(system, (1.0 - mdp.gamma) * mdp.initial);
  return state_occupancy.unsqueeze(1) * pi;
}

RatioProblem random_ratio_problem(const FiniteMdpOptions& options, std::uint64_t seed) {
  if (options.replay_policies < 1)
    fail("finite MDP: replay needs at least one policy (got {})", options.replay_policies);
  at::Generator gen = at::detail::createCPUGenerator(seed);
  RatioProblem problem;
  problem.mdp = random_finite_mdp(options, gen);
  const auto n = options.states, m = options.actions;
  problem.replay = torch::zeros({n, m}, kDouble);
  for (int i = 0; i < options.replay_policies; ++i)
    problem.replay += discounted_occupancy(problem.mdp, random_policy(n, m, gen));
  problem.replay /= problem.replay.sum();
  problem.policy = random_policy(n, m, gen);
  problem.occupancy = discounted_occupancy(problem.mdp, problem.policy);
  problem.true_ratio = problem.occupancy / problem.replay;
  return problem;
}

}  // namespace tom::objectives
