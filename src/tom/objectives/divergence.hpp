#pragma once
// The f-divergences of TOM's dual program (tom_dual.hpp): each owns its pieces of the dual
// loss and how a ratio is read from the dual's residuals e = r + gamma (1-done) Q(s',pi) - Q(s,a).
#include <memory>
#include <string>

#include <torch/torch.h>

namespace tom::objectives {

class Divergence {
 public:
  virtual ~Divergence() = default;

  // The conjugate term of the dual loss over a batch of residuals e [B]. chi2: the mean of
  // f*(e) = e^2/2 + e; kl: log E[exp(e)] = logsumexp(e) - log B (see TomDual).
  virtual torch::Tensor conjugate_term(const torch::Tensor& e) const = 0;

  // The ratio f*'(e) of each residual. chi2: max(e + 1, 0); kl: exp(e), scaled to mean 1.
  virtual torch::Tensor ratio(const torch::Tensor& e) const = 0;

  // The weights conjugate-u puts on Q's surrogate loss, linear where they can be so that
  // regression noise in e averages out. chi2: e + 1 unclipped; kl: softmax(e) B. Divided
  // by the batch size B, they are the gradient of conjugate_term(e).
  virtual torch::Tensor linear_weights(const torch::Tensor& e) const = 0;

  // f(w), the convex function whose conjugate is f* (minimax form): chi2 (w-1)^2/2,
  // kl w log w - w + 1 (whose f*(x) = exp(x) - 1).
  virtual torch::Tensor generator(const torch::Tensor& w) const = 0;

  // Whether the ratio f*'(e) of the conjugate forms is only defined up to scale (kl: log E[exp e]
  // is shift invariant).
  virtual bool scale_free() const = 0;

  // Per-transition weights from dual residuals e: ratio(e), clipped by clip_weights.
  torch::Tensor weights_from_residuals(const torch::Tensor& e, double clip_max) const;
};

// The divergence named by TomDualSettings::divergence (chi2 or kl); throws tom::Error for
// another name.
std::unique_ptr<const Divergence> make_divergence(const std::string& name);

// Clips non-negative weights to [0, clip_max].
torch::Tensor clip_weights(const torch::Tensor& w, double clip_max);

}  // namespace tom::objectives
