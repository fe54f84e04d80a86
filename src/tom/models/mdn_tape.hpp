#pragma once
// The mixture density network's training loss and its gradient, computed by hand: a
// forward pass that keeps what the backward pass needs in buffers allocated once, and a
// backward pass written out (mixture responsibilities, swish derivatives, one GEMM per
// weight). No autograd graph is built and nothing is allocated per step but a few
// small tensors (the gain is in docs/results.md, "MDN step by hand").
// MixtureDensityNetwork::forward_rows is the definition it must match;
// tests/models/test_mdn_tape.cpp checks it against autograd.
//
// Parameters and gradients are lists of tensors in the MDN's layout: weight [in, out]
// and bias [out] of each layer in turn (swish after every hidden layer), then, with a
// learned variance floor, its raw scalar [1]. The output layer gives, per row, [3, D, K]:
// component means, raw variances (variance = softplus(raw) + floor) and mixture logits
// for each of the D output dimensions.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace tom::models {

class MdnTape {
 public:
  // widths = {in, hidden..., 3 * outputs * components}; rows: the most rows one call takes.
  MdnTape(std::vector<std::int64_t> widths, std::int64_t outputs, std::int64_t components, std::int64_t rows,
          const torch::TensorOptions& options);

  std::int64_t rows() const { return rows_; }

  // inputs [n, in] and targets [n, D] in normalised units, row_weights [n], n <= rows().
  // Returns sum_r row_weights[r] * nll_r as a 0-dim tensor, where nll_r is the summed
  // mixture negative log-likelihood of row r's D dimensions, and overwrites `gradients`
  // with its gradient. fixed_floor is the variance floor when `parameters` has no
  // learned one.
  torch::Tensor loss_and_gradient(const std::vector<torch::Tensor>& parameters, double fixed_floor,
                                  const torch::Tensor& inputs, const torch::Tensor& targets,
                                  const torch::Tensor& row_weights, const std::vector<torch::Tensor>& gradients);

 private:
  struct CallViews;
  CallViews views(std::int64_t n) const;
  // Throws tom::Error on a call's wrong sizes; returns whether the floor is learned.
  bool check_call(const std::vector<torch::Tensor>& parameters, const torch::Tensor& inputs,
                  const torch::Tensor& targets, const torch::Tensor& row_weights,
                  const std::vector<torch::Tensor>& gradients) const;
  // The steps of loss_and_gradient: the MLP forward (returns the last hidden layer), the
  // mixture NLL (learned_floor: softplus of the learned floor, or undefined for
  // fixed_floor), dL/d(outputs), the MLP backward.
  torch::Tensor forward(const std::vector<torch::Tensor>& parameters, const torch::Tensor& inputs,
                        const CallViews& v);
  torch::Tensor mixture_nll(const torch::Tensor& learned_floor, double fixed_floor, const torch::Tensor& targets,
                            const torch::Tensor& row_weights, const CallViews& v);
  void output_gradient(const torch::Tensor& row_weights, const CallViews& v);
  void backward(const std::vector<torch::Tensor>& parameters, const torch::Tensor& inputs,
                const torch::Tensor& last_hidden, const std::vector<torch::Tensor>& gradients, const CallViews& v);

  std::vector<std::int64_t> widths_;
  std::int64_t outputs_, components_, rows_;
  std::vector<torch::Tensor> pre_activations_, activations_;  // per hidden layer, [rows, width]
  std::vector<torch::Tensor> grad_hidden_, grad_pre_;         // per hidden layer, [rows, width]
  // The output layer runs transposed, [3, D, K, n]: a reduction over the K components
  // is then one over whole rows of n values, which LibTorch vectorises (reducing a
  // contiguous last dimension of 10 made softmax and logsumexp most of the step). Each
  // buffer below holds `rows` rows and is viewed at the call's n.
  torch::Tensor out_, grad_out_;  // [3 * D * K * rows]
  // Per component [D, K, n]: the variance, d variance / d raw, the scaled error
  // (y - mean) / variance, its square, the log-density plus logit, the posterior and
  // prior responsibilities, and the variance's gradient.
  torch::Tensor variance_, variance_slope_, scaled_error_, scaled_error_sq_, joint_, posterior_, prior_,
      grad_variance_;
  // Per dimension [D, n]: the targets, the components' maximum joint and logit, and the
  // sums of exp(joint - max) and exp(logit - max), in place then their log-sum-exps.
  torch::Tensor targets_, max_joint_, max_logit_, sum_joint_, sum_logit_;
};

}  // namespace tom::models
