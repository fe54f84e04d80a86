#include "tom/objectives/divergence.hpp"

#include <cmath>

#include "tom/core/error.hpp"

namespace tom::objectives {
namespace {

class Chi2Divergence final : public Divergence {
 public:
  torch::Tensor conjugate_term(const torch::Tensor& e) const override { return (0.5 * e * e + e).mean(); }
  torch::Tensor ratio(const torch::Tensor& e) const override { return torch::relu(e + 1.0); }
  torch::Tensor linear_weights(const torch::Tensor& e) const override { return e + 1.0; }
  torch::Tensor generator(const torch::Tensor& w) const override { return 0.5 * (w - 1.0).square(); }
  bool scale_free() const override { return false; }
};

class KlDivergence final : public Divergence {
 public:
  torch::Tensor conjugate_term(const torch::Tensor& e) const override {
    return torch::logsumexp(e, 0) - std::log(static_cast<double>(e.size(0)));
  }
  torch::Tensor ratio(const torch::Tensor& e) const override {
    // exp(e) is only defined up to scale by the dual (log E[exp e] is shift invariant).
    const torch::Tensor w = torch::exp(e - e.max());
    return w / w.mean();
  }
  torch::Tensor linear_weights(const torch::Tensor& e) const override {
    return torch::softmax(e, 0) * static_cast<double>(e.size(0));
  }
  torch::Tensor generator(const torch::Tensor& w) const override { return torch::xlogy(w, w) - w + 1.0; }
  bool scale_free() const override { return true; }
};

}  // namespace

torch::Tensor Divergence::weights_from_residuals(const torch::Tensor& e, double clip_max) const {
  if (e.dim() != 1 || e.numel() == 0) fail("TOM weights: residuals must be a non-empty vector");
  return clip_weights(ratio(e), clip_max);
}

std::unique_ptr<const Divergence> make_divergence(const std::string& name) {
  if (name == "chi2") return std::make_unique<Chi2Divergence>();
  if (name == "kl") return std::make_unique<KlDivergence>();
  fail("TOM dual: unknown divergence '{}' (valid: chi2, kl)", name);
}

torch::Tensor clip_weights(const torch::Tensor& w, double clip_max) {
  if (w.dim() != 1 || w.numel() == 0) fail("TOM weights: weights must be a non-empty vector");
  if (!(clip_max > 0.0)) fail("TOM weights: clip_max must be positive (got {})", clip_max);
  return w.clamp(0.0, clip_max);
}

}  // namespace tom::objectives
