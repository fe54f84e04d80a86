// `tom verify-weights`: checks TOM's occupancy-ratio estimator against the closed-form
// ratio on a random finite MDP, for each form of the dual.
#include <cstdio>
#include <memory>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/core/threads.hpp"
#include "tom/objectives/finite_verify.hpp"

namespace tom::cli {
namespace {

struct VerifyOptions {
  objectives::FiniteMdpOptions mdp;
  std::uint64_t seed = 0;
  objectives::TomDualSettings dual = objectives::verification_defaults();
  std::vector<std::string> forms;
  int threads = 1;
};

void run_verify(const VerifyOptions& options) {
  set_threads(options.threads);
  std::vector<std::string> names = options.forms;
  if (names.empty())
    for (const auto& form : objectives::verification_forms()) names.push_back(form.name);
  // Unknown forms and bad settings are named before any work starts.
  for (const auto& name : names)
    objectives::verification_settings(objectives::verification_form(name), options.dual).check();
  const auto problem = objectives::random_ratio_problem(options.mdp, options.seed);
  fmt::print("finite MDP: {} states, {} actions, {} transitions, seed {}; true ratio in [{:.3g}, {:.3g}]\n",
             options.mdp.states, options.mdp.actions,
             options.mdp.stochastic ? "stochastic" : "deterministic", options.seed,
             problem.true_ratio.min().item<double>(), problem.true_ratio.max().item<double>());
  std::vector<std::string> diverged;
  for (const auto& name : names) {
    const auto& form = objectives::verification_form(name);
    const auto used = objectives::verification_settings(form, options.dual);
    try {
      const auto [errors, training] = objectives::verify_form(problem, form, options.dual, options.seed);
      fmt::print("{}: max rel err {:.3g}, mean rel err {:.3g}, weighted L1 {:.3g} (lr {:.3g}, {} steps, "
                 "last weight change {:.2g})\n",
                 form.name, errors.max_relative, errors.mean_relative, errors.weighted_l1, used.lr, training.steps,
                 training.weight_change);
    } catch (const Error& e) {
      fmt::print("{}: {}\n", form.name, e.what());
      diverged.push_back(form.name);
    }
    std::fflush(stdout);
  }
  if (!diverged.empty()) fail("the dual failed for {} (see above)", join(diverged));
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto options = std::make_shared<VerifyOptions>();
  auto* cmd = app.add_subcommand(
      "verify-weights",
      "Check TOM's dual ratio estimator against the exact d^pi/d^R on a random finite MDP");
  cmd->add_option("--states", options->mdp.states, "number of states (a dense N x M x N table is built)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--actions", options->mdp.actions, "number of actions")->check(CLI::Range(1, 100));
  cmd->add_option("--seed", options->seed, "seed of the MDP, policies and dual");
  cmd->add_flag("--stochastic", options->mdp.stochastic,
                "stochastic transitions (3 successors per state-action)");
  cmd->add_option("--steps", options->dual.steps,
                  "most dual steps per form (conjugate-u may run three times as many, minimax twice)");
  cmd->add_option("--schedule", options->dual.schedule,
                  "converge (anneal once the weights settle, stop when annealed) or fixed (--steps at one rate)");
  cmd->add_option("--batch", options->dual.batch, "dual batch size (conjugate-u uses 4 times it)");
  cmd->add_option("--lr", options->dual.lr, "dual learning rate (conjugate-u uses 0.35 of it, minimax a quarter)");
  cmd->add_option("--hidden", options->dual.hidden, "hidden units of the dual networks");
  cmd->add_option("--ema", options->dual.ema, "Polyak averaging factor");
  cmd->add_option("--l2", options->dual.l2, "L2 penalty on the dual networks' weights");
  cmd->add_option("--bias-rate", options->dual.bias_rate,
                  "conjugate form's Q output-bias rate: shared (lr) or scaled (lr / (1 - gamma))");
  cmd->add_option("--divergence", options->dual.divergence, "chi2 or kl");
  cmd->add_option("--forms", options->forms,
                  "forms to run (default all: conjugate-exact, conjugate-k1, conjugate-k16, "
                  "conjugate-u, minimax)");
  cmd->add_option("--threads", options->threads, "CPU threads");
  cmd->callback([options] { run_verify(*options); });
}

}  // namespace tom::cli
