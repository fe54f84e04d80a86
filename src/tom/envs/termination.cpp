// Batched termination rules for model rollouts (ENVS.md section 4). They look only at the
// next observation o' ([B, obs_dim], any floating dtype, any device). The paper forms keep
// the rules of the MBPO/TOM code with their quirks; the -v5 forms state the environment's
// own health check on the observation.
#include <limits>

#include <torch/torch.h>

#include "tom/core/error.hpp"
#include "tom/envs/registered.hpp"
#include "tom/envs/registry.hpp"

namespace tom::envs {
namespace {

using torch::Tensor;
using Rule = Tensor (*)(const Tensor& next_obs);

Tensor column(const Tensor& o, int64_t index) { return o.select(1, index); }
Tensor all_finite(const Tensor& o) { return torch::isfinite(o).all(1); }
Tensor never(const Tensor& o) { return torch::zeros({o.size(0)}, o.options().dtype(torch::kBool)); }

// Hopper paper rule: the "< 100" test is one-sided (the original takes abs() of the
// comparison result, not of o'), so very negative entries pass.
Tensor hopper_paper(const Tensor& o) {
  const Tensor z = column(o, 0), angle = column(o, 1);
  const Tensor alive = all_finite(o) & (o.slice(1, 1) < 100).all(1) & (z > 0.7) & (angle.abs() < 0.2);
  return alive.logical_not();
}

// Hopper-v5 health check on the observation: 0.7 < z < inf, |angle| < 0.2 and every
// entry after z strictly inside (-100, 100). NaN fails every comparison, so it is done.
Tensor hopper_v5(const Tensor& o) {
  const Tensor z = column(o, 0), angle = column(o, 1);
  const Tensor alive = (z > 0.7) & (z < std::numeric_limits<double>::infinity()) & (angle.abs() < 0.2) &
                       (o.slice(1, 1).abs() < 100).all(1);
  return alive.logical_not();
}

// Walker2d (paper and v5 alike): 0.8 < z < 2 and -1 < angle < 1; NaN is done.
Tensor walker2d(const Tensor& o) {
  const Tensor z = column(o, 0), angle = column(o, 1);
  return ((z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0)).logical_not();
}

// Ant: the state (the first 27 entries: qpos[2:], qvel) finite and 0.2 <= z <= 1.
Tensor ant(const Tensor& o) {
  const Tensor z = column(o, 0);
  return (all_finite(o.slice(1, 0, 27)) & (z >= 0.2) & (z <= 1.0)).logical_not();
}

// Humanoid paper rule: done only when z is strictly outside [1, 2]; no finiteness test,
// so a NaN height is not done.
Tensor humanoid_paper(const Tensor& o) {
  const Tensor z = column(o, 0);
  return (z < 1.0) | (z > 2.0);
}

// Humanoid-v5 health check: 1 < z < 2 strictly; NaN is done.
Tensor humanoid_v5(const Tensor& o) {
  const Tensor z = column(o, 0);
  return ((z > 1.0) & (z < 2.0)).logical_not();
}

// InvertedPendulum (paper and v5 alike): finite and |angle| <= 0.2.
Tensor inverted_pendulum(const Tensor& o) {
  return (all_finite(o) & (column(o, 1).abs() <= 0.2)).logical_not();
}

Rule rule_for(const std::string& name) {
  if (name == "hopper") return hopper_paper;
  if (name == "hopper-v5") return hopper_v5;
  if (name == "walker2d" || name == "walker2d-v5") return walker2d;
  if (name == "ant" || name == "ant-v5") return ant;
  if (name == "humanoid") return humanoid_paper;
  if (name == "humanoid-v5") return humanoid_v5;
  if (name == "inverted_pendulum" || name == "inverted_pendulum-v5") return inverted_pendulum;
  if (name == "halfcheetah" || name == "halfcheetah-v5" || name == "swimmer" || name == "swimmer-v5") return never;
  fail("no termination rule for environment '{}'", name);
}

void check_batch(const Tensor& tensor, const char* what, int64_t batch, int64_t width, const std::string& env) {
  if (!tensor.defined()) fail("termination rule of '{}': {} is undefined", env, what);
  if (tensor.dim() != 2 || tensor.size(1) != width || (batch >= 0 && tensor.size(0) != batch))
    fail("termination rule of '{}': {} must have shape [B, {}]{}, got {}", env, what, width,
         batch >= 0 ? fmt::format(" with B = {}", batch) : "", c10::str(tensor.sizes()));
  if (!tensor.is_floating_point()) fail("termination rule of '{}': {} must be a floating-point tensor", env, what);
}

}  // namespace

TerminationFn termination_fn(const std::string& name) {
  // The dimensions come from the environment itself (this also rejects unknown names).
  const EnvSpec spec = make_env(name)->spec();
  const auto check = [spec](const Tensor& obs, const Tensor& action, const Tensor& next_obs) {
    check_batch(next_obs, "next_obs", -1, spec.obs_dim, spec.name);
    check_batch(obs, "obs", next_obs.size(0), spec.obs_dim, spec.name);
    check_batch(action, "action", next_obs.size(0), spec.action_dim, spec.name);
  };
  if (const auto registered = find_registered(name)) {
    TerminationFn given = registered->termination;
    return [check, given, name](const Tensor& obs, const Tensor& action, const Tensor& next_obs) {
      check(obs, action, next_obs);
      torch::NoGradGuard no_grad;
      if (!given) return never(next_obs);
      const Tensor ended = given(obs, action, next_obs);
      if (!ended.defined() || ended.dim() != 1 || ended.size(0) != next_obs.size(0))
        fail("termination rule of '{}' must return one flag per row ([{}])", name, next_obs.size(0));
      return ended.to(next_obs.device(), torch::kBool);
    };
  }
  const Rule rule = rule_for(name);
  return [check, rule](const Tensor& obs, const Tensor& action, const Tensor& next_obs) {
    check(obs, action, next_obs);
    torch::NoGradGuard no_grad;
    return rule(next_obs);
  };
}

}  // namespace tom::envs
