#pragma once
// Transition weights, checked once where a model-learning objective hands them over and
// trusted from there on (the model fit, rollout starts, the weight summary): one per row
// of a dataset (the replay buffer's slots, or a resample of them), finite, non-negative;
// checked() makes them average 1 over the buffer. Empty weights mean every transition
// counts the same; consumers then take their unweighted paths (plain sampling, plain
// likelihood).
#include <cstdint>
#include <string_view>

#include <torch/types.h>

namespace tom::data {

class Weights {
 public:
  Weights() = default;  // uniform
  // Checks `raw` against `rows` slots (shape [rows], finite, >= 0, not all zero) and keeps
  // it rescaled to mean 1 (float32, CPU). Throws tom::Error naming `source`.
  static Weights checked(const torch::Tensor& raw, std::int64_t rows, std::string_view source);

  bool uniform() const { return !values_.defined(); }
  // [rows] float32 on the CPU; undefined when uniform.
  const torch::Tensor& values() const { return values_; }
  // The values, or ones for `rows` slots when uniform.
  torch::Tensor values_or_ones(std::int64_t rows) const;
  // The weights of a resample: row i gets the weight of slot rows[i] (not rescaled; a
  // resample's weights average 1 only in expectation, and may all be zero).
  Weights resampled(const torch::Tensor& rows) const;

 private:
  explicit Weights(torch::Tensor values) : values_(std::move(values)) {}
  torch::Tensor values_;
};

}  // namespace tom::data
