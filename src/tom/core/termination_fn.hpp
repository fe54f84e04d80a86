#pragma once
// The type of a task's batched termination rule, shared by the environments (which
// define the rules) and the models (whose rollouts apply them). No LibTorch header here.
#include <functional>

namespace at {
class Tensor;
}  // namespace at

namespace tom {

// Given [B, obs_dim] observations, [B, action_dim] actions and [B, obs_dim] next
// observations, returns a [B] bool tensor. It agrees with Env::step on real transitions.
using TerminationFn =
    std::function<at::Tensor(const at::Tensor& obs, const at::Tensor& action, const at::Tensor& next_obs)>;

}  // namespace tom
