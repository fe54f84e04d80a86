#pragma once
// Runs the TOM dual (the same code as in the learning loop) on a finite MDP with one-hot
// states and actions, and compares its ratio with the closed-form w* = d^pi / d^R.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "tom/objectives/finite_mdp.hpp"
#include "tom/objectives/tom_dual.hpp"

namespace tom::objectives {

// One way of running the dual: its form, and how next actions a' ~ pi(s') are given.
struct VerificationForm {
  std::string name;
  std::string form;       // TomDualSettings::form
  int next_actions = 1;   // K sampled next actions (ignored when exact_next)
  bool exact_next = false;  // every action with its pi probability: the exact expectation
  // Multipliers of the base learning rate, step count and batch (docs/tom_weights.md):
  // minimax's descent-ascent diverges at the exact conjugate form's rate and converges
  // about half as fast at a quarter of it; conjugate-u's sampled regression target is
  // noisy, and at the full rate or a batch of 256 the noise, not the bias, sets its error
  // (50x5 deterministic: 7.2 % mean relative error at 256, 4.8 % at 512, 3.9 % at 1024).
  double lr_scale = 1.0;
  double steps_scale = 1.0;
  int batch_scale = 1;
};

// conjugate-exact, conjugate-k1, conjugate-k16, conjugate-u, minimax.
std::vector<VerificationForm> verification_forms();
const VerificationForm& verification_form(const std::string& name);  // throws on unknown names

struct RatioErrors {
  double max_relative = 0.0;   // max over (s,a) of |w - w*| / w*
  double mean_relative = 0.0;  // mean over (s,a) of |w - w*| / w*
  double weighted_l1 = 0.0;    // sum_(s,a) d^R(s,a) |w - w*|
};

RatioErrors ratio_errors(const RatioProblem& problem, const torch::Tensor& estimate);

// Samplers over one-hot inputs: replay (s,a) ~ d^R, s' ~ P(.|s,a), r = 0, done = 0;
// s0 ~ mu0; next actions exact or K samples from pi. Draws from `gen`.
DualData finite_dual_data(const RatioProblem& problem, bool exact_next, at::Generator gen);

// The dual's ratio for every (s,a), [N, M] float64: the expectation over s' ~ P of the
// per-transition weight (f*'(e) evaluated with the exact next-action expectation, or the
// minimax form's w(s,a)), scaled so that E_R[w] = 1 for kl (whose conjugate dual fixes w
// only up to scale).
torch::Tensor estimated_ratio(const TomDual& dual, const RatioProblem& problem);

// The base dual settings of the check (docs/tom_weights.md): a net sized for one-hot
// inputs, no L2 penalty (it biases the rarely sampled entries), the converge schedule.
TomDualSettings verification_defaults();

// The dual settings verify_form trains `form` with: `base` changed to the form, its lr and
// steps scaled, clipping off (so the raw dual solution is measured).
TomDualSettings verification_settings(const VerificationForm& form, TomDualSettings base);

struct Verification {
  RatioErrors errors;
  DualTrainReport training;
};

// Trains a fresh dual with verification_settings(form, base) and returns its errors.
Verification verify_form(const RatioProblem& problem, const VerificationForm& form,
                        TomDualSettings base, std::uint64_t seed);

}  // namespace tom::objectives
