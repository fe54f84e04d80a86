#pragma once
// Random finite MDPs with known dynamics, where the occupancy ratio TOM estimates has a
// closed form: w*(s,a) = d^pi(s,a) / d^R(s,a), both occupancies solved exactly in double.
// They are the ground truth for checking the dual estimator (finite_verify.hpp).
#include <cstdint>

#include <torch/torch.h>

namespace tom::objectives {

struct FiniteMdp {
  torch::Tensor transition;  // [N, M, N] float64, P(s' | s, a)
  torch::Tensor initial;     // [N] float64, start-state distribution (full support)
  double gamma = 0.99;
  std::int64_t states() const { return transition.size(0); }
  std::int64_t actions() const { return transition.size(1); }
};

struct FiniteMdpOptions {
  std::int64_t states = 10;
  std::int64_t actions = 3;
  bool stochastic = false;  // false: each (s,a) has one successor
  std::int64_t successors = 3;  // reachable next states per (s,a) when stochastic
  double gamma = 0.99;
  int replay_policies = 4;  // older policies whose occupancies make up the replay
};

// The replay distribution is a mixture of several older random policies' normalised
// discounted occupancies; every (s,a) has positive mass, so the ratio is finite.
struct RatioProblem {
  FiniteMdp mdp;
  torch::Tensor policy;      // [N, M] current stochastic policy pi(a|s)
  torch::Tensor replay;      // [N, M] d^R(s,a), sums to 1
  torch::Tensor occupancy;   // [N, M] d^pi(s,a), sums to 1
  torch::Tensor true_ratio;  // [N, M] w* = d^pi / d^R
};

// Throws tom::Error on bad sizes.
FiniteMdp random_finite_mdp(const FiniteMdpOptions& options, at::Generator& gen);

// A policy with full support: softmax of standard-normal logits. [N, M] float64.
torch::Tensor random_policy(std::int64_t states, std::int64_t actions, at::Generator& gen);

// Normalised discounted occupancy (1-gamma) sum_t gamma^t P(s_t=s, a_t=a) of `policy`,
// from (I - gamma P_pi^T) d = (1-gamma) mu0. [N, M] float64, sums to 1.
torch::Tensor discounted_occupancy(const FiniteMdp& mdp, const torch::Tensor& policy);

RatioProblem random_ratio_problem(const FiniteMdpOptions& options, std::uint64_t seed);

}  // namespace tom::objectives
