#pragma once
// Mixture density network (the TOM paper code's default model): one swish MLP whose
// output gives, for every dimension of y = [reward, next_obs - obs] independently, a
// mixture of `components` Gaussians (means, variances softplus(raw) + floor, mixture
// logits). Trained by the mixture negative log-likelihood (logsumexp). The variance floor
// is min_variance, or (variance_floor = learned, the TOM authors' code) softplus of one
// trained scalar that starts at 0, i.e. a floor of log 2 in normalised units. Its
// training gradient is computed by hand (MdnTape); autograd serves custom batch losses.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tom/models/dynamics_model.hpp"
#include "tom/models/mdn_tape.hpp"

namespace tom::models {

struct MdnSettings {
  int hidden_layers = 4;
  int hidden_units = 200;
  int components = 10;
  std::string variance_floor = "fixed";
  double min_variance = 1e-3;
  double weight_decay = 0.0;
  FitSettings fit;

  template <class V>
  void visit(V& v) {
    v("hidden_layers", hidden_layers, "hidden layers", Range::at_least(1));
    v("hidden_units", hidden_units, "units per hidden layer", Range::at_least(1));
    v("components", components, "Gaussian components per output dimension", Range::at_least(1));
    v("variance_floor", variance_floor,
      "floor added to each component's variance: fixed (min_variance) or learned (softplus of a trained scalar "
      "starting at 0; the TOM authors' code)",
      OneOf{"fixed", "learned"});
    v("min_variance", min_variance, "fixed floor added to each component's variance (normalised units)",
      Range::positive());
    v("weight_decay", weight_decay, "L2 decay of the weight matrices (gradient += decay * weight)",
      Range::at_least(0));
    fit.visit(v);
  }
};

class MixtureDensityNetwork : public DynamicsModel {
 public:
  // Throws tom::Error on out-of-range settings.
  MixtureDensityNetwork(std::int64_t obs_dim, std::int64_t action_dim, const MdnSettings& settings = {},
                        std::uint64_t seed = 0, torch::Device device = torch::kCPU);

  // Draws a component per row and dimension by inverting the mixture's cumulative
  // weights with one uniform number, then a Gaussian sample from that component.
  using DynamicsModel::sample;
  Prediction sample(const torch::Tensor& obs, const torch::Tensor& action, torch::Generator& gen) override;
  // The mixture mean.
  Prediction mean(const torch::Tensor& obs, const torch::Tensor& action) override;

  const MdnSettings& settings() const { return settings_; }

 protected:
  std::int64_t trained_members() const override { return 1; }
  std::int64_t elite_count() const override { return 1; }
  bool bootstrap() const override { return false; }
  RowOutputs forward_rows(const torch::Tensor& inputs, const torch::Tensor& targets, bool with_moments) override;
  bool has_likelihood_gradient() const override { return true; }
  LossAndGradient likelihood_gradient(int slot, const torch::Tensor& inputs, const torch::Tensor& targets,
                                      const torch::Tensor& row_weights) override;
  std::vector<std::pair<std::string, std::int64_t>> layout() const override;
  std::string kind() const override { return "mixture_density_network"; }

 private:
  // Inputs [B, in] -> mixture parameters [B, 3, D, K]: component means, raw variances
  // and logits along dim 1.
  torch::Tensor network(const torch::Tensor& inputs);
  // softplus(raw) + the variance floor.
  torch::Tensor variances(const torch::Tensor& raw);

  MdnSettings settings_;
  int layers_;  // weight matrices (hidden_layers + 1)
  std::vector<std::int64_t> widths_;  // {in, hidden..., out}
  std::vector<torch::Tensor> parameter_list_;  // params_'s tensors in order
  // A minibatch half's hand-written gradient: its tape and gradient buffer (with views).
  struct GradientSlot {
    std::unique_ptr<MdnTape> tape;
    torch::Tensor gradient;
    std::vector<torch::Tensor> gradient_views;
  };
  std::array<GradientSlot, 2> slots_;
};

}  // namespace tom::models
