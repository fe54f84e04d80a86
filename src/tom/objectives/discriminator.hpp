#pragma once
// TOM's transition discriminator: tells recent current-policy transitions (label 1) from
// the whole replay buffer (soft label, 0.1 by default) on (s, a, s'). Its logit
// log D - log(1-D) is the log-ratio reward r(s,a,s') fed to the dual (tom_dual.hpp); with
// buffer label 0 it estimates log d^recent/d^buffer.
//
// Network: separate input branches for s, a and s' (Linear to 128, tanh each),
// concatenated, Linear 256 tanh, Linear 1. Trained by BCE plus a gradient penalty
// weight * (||d logit / d x|| - 1)^2 on random interpolates of the two sides. The input
// gradient of this small network is written out in closed form, so the penalty costs one
// first-order backward instead of a double backward.
#include <cstdint>
#include <memory>

#include <torch/torch.h>

#include "tom/core/settings.hpp"

namespace tom {
class PairedWork;
class WorkerThread;
}  // namespace tom

namespace tom::objectives {

struct DiscriminatorSettings {
  bool enabled = true;
  int passes = 100;
  int batch = 256;
  double lr = 3e-4;
  double buffer_label = 0.1;
  double grad_penalty = 10.0;
  bool recreate = true;
  bool train_branches = true;
  int branch_hidden = 128;
  int hidden = 256;

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "learn a log-ratio reward (off: r = 1 for recent transitions, else 0)");
    v("passes", passes, "passes over the recent pool per fit", Range::at_least(1));
    v("batch", batch, "transitions per side per step", Range::at_least(1));
    v("lr", lr, "Adam learning rate", Range::positive());
    v("buffer_label", buffer_label, "BCE target of buffer transitions (label smoothing)",
      Range::between(0.0, 0.5));
    v("grad_penalty", grad_penalty, "weight of the gradient penalty on interpolates",
      Range::at_least(0));
    v("recreate", recreate, "start from a fresh network and optimiser at every fit");
    v("train_branches", train_branches,
      "optimise the s, a, s' input branches too (off: only the joint trunk learns, the branches keep their "
      "random initialisation, as in the TOM authors' code)");
    v("branch_hidden", branch_hidden, "units of each input branch (s, a, s')", Range::at_least(1));
    v("hidden", hidden, "units of the joint hidden layer", Range::at_least(1));
  }

  void check();
};

// Transitions as rows: s [N,S], a [N,A], s_next [N,S].
struct Transitions {
  torch::Tensor s, a, s_next;
};

class Discriminator {
 public:
  Discriminator(DiscriminatorSettings settings, std::int64_t state_dim, std::int64_t action_dim,
                torch::Device device = torch::kCPU);
  ~Discriminator();

  // passes x ceil(|recent| / batch) steps; each pairs a shuffled batch of the recent pool
  // with a uniform batch of the buffer. Returns the mean loss of the last pass.
  double fit(const Transitions& recent, const Transitions& buffer, at::Generator& gen);

  // One BCE + gradient-penalty step on rows [s, a, s'] of each side ([B, 2S+A] each),
  // computed in two halves of the rows (at the same time with 2+ threads).
  double step(const torch::Tensor& recent_rows, const torch::Tensor& buffer_rows,
              at::Generator& gen);

  // Logits log D - log(1-D) of transitions, [N]; chunked, no gradient.
  torch::Tensor log_ratio(const Transitions& transitions) const;

  const DiscriminatorSettings& settings() const { return settings_; }

  // Network and optimiser state (needed to resume when networks are not re-created).
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  struct Net;
  torch::Tensor rows(const Transitions& t, const char* name) const;  // checked [N, 2S+A]
  void reset(at::Generator* gen);  // fresh network and optimiser; weights drawn from gen if given
  double step(const torch::Tensor& recent_rows, const torch::Tensor& buffer_rows, at::Generator& gen,
              PairedWork& both);

  DiscriminatorSettings settings_;
  std::int64_t state_dim_, action_dim_;
  torch::Device device_;
  std::shared_ptr<Net> net_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::unique_ptr<WorkerThread> worker_;  // a step's second half, with 2+ threads
};

}  // namespace tom::objectives
