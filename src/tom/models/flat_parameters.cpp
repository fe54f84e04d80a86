#include "tom/models/flat_parameters.hpp"

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"
#include "tom/nn/adam.hpp"

namespace tom::models {

FlatParameters::FlatParameters(const std::vector<Spec>& specs, torch::Device device) {
  std::int64_t total = 0;
  for (const auto& spec : specs) {
    std::int64_t numel = 1;
    for (auto d : spec.shape) numel *= d;
    segments_.push_back({total, numel, spec.weight_decay, spec.shape});
    total += numel;
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  values_ = torch::zeros({total}, options);
  grads_ = torch::zeros({total}, options);
  first_moment_ = torch::zeros({total}, options);
  second_moment_ = torch::zeros({total}, options);
  const auto gradient_views = views(grads_);
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    // A detached view shares the buffer's storage but is its own autograd leaf.
    auto tensor = values_.narrow(0, segments_[i].offset, segments_[i].numel).view(segments_[i].shape).detach();
    tensor.requires_grad_(true);
    tensor.mutable_grad() = gradient_views[i];
    tensors_.push_back(tensor);
  }
}

std::vector<torch::Tensor> FlatParameters::views(const torch::Tensor& flat) const {
  if (flat.dim() != 1 || flat.numel() != values_.numel())
    fail("a flat parameter tensor needs {} values, got shape {}", values_.numel(), shape_of(flat));
  std::vector<torch::Tensor> result;
  for (const auto& seg : segments_) result.push_back(flat.narrow(0, seg.offset, seg.numel).view(seg.shape));
  return result;
}

void FlatParameters::adam_step(double learning_rate) {
  ++steps_;
  const nn::AdamHyperparameters hyper{.lr = learning_rate};
  for (const auto& seg : segments_) {
    auto range = [&](const torch::Tensor& flat) { return flat.narrow(0, seg.offset, seg.numel); };
    nn::adam_update(range(values_), range(grads_), range(first_moment_), range(second_moment_), steps_, hyper,
                    seg.weight_decay);
  }
}

FlatParameters::Snapshot FlatParameters::snapshot() const {
  return {values_.clone(), first_moment_.clone(), second_moment_.clone(), steps_};
}

void FlatParameters::restore(const Snapshot& snapshot) {
  torch::NoGradGuard no_grad;
  values_.copy_(snapshot.values);
  first_moment_.copy_(snapshot.first_moment);
  second_moment_.copy_(snapshot.second_moment);
  steps_ = snapshot.steps;
}

void FlatParameters::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  archive.write(prefix + "values", values_.detach().cpu());
  archive.write(prefix + "adam_first_moment", first_moment_.cpu());
  archive.write(prefix + "adam_second_moment", second_moment_.cpu());
  archive.write(prefix + "adam_steps", torch::tensor({steps_}, torch::kInt64));
}

void FlatParameters::load(torch::serialize::InputArchive& archive, const std::string& prefix) {
  auto read = [&](const std::string& key) {
    torch::Tensor stored;
    archive.read(prefix + key, stored);
    return stored;
  };
  auto check = [&](const std::string& key, const torch::Tensor& stored) {
    if (stored.dim() != 1 || stored.numel() != numel())
      fail("checkpoint entry {}{} has {} values, this model has {} parameters", prefix, key, stored.numel(),
           numel());
  };
  auto values = read("values"), first = read("adam_first_moment"), second = read("adam_second_moment");
  check("values", values);
  check("adam_first_moment", first);
  check("adam_second_moment", second);
  auto steps = read("adam_steps");
  if (steps.numel() != 1) fail("checkpoint entry {}adam_steps is malformed", prefix);
  torch::NoGradGuard no_grad;
  values_.copy_(values);
  first_moment_.copy_(first);
  second_moment_.copy_(second);
  steps_ = steps.item<std::int64_t>();
}

}  // namespace tom::models
