#include "tom/data/replay_buffer.hpp"

#include <algorithm>
#include <cmath>

#include "tom/core/error.hpp"
#include "tom/core/shapes.hpp"

namespace tom::data {
namespace {

void check_values(std::span<const double> values, std::size_t expected, const char* what) {
  if (values.size() != expected) fail("replay buffer: {} has {} entries, expected {}", what, values.size(), expected);
  for (double v : values)
    if (!std::isfinite(v)) fail("replay buffer: {} contains a non-finite value ({})", what, v);
}

void check_rows(const torch::Tensor& t, std::int64_t rows, std::int64_t cols, const char* what) {
  const bool ok = cols == 0 ? (t.dim() == 1 && t.size(0) == rows)
                            : (t.dim() == 2 && t.size(0) == rows && t.size(1) == cols);
  if (!ok) {
    if (cols == 0) fail("replay buffer: {} must have shape [{}], got {}", what, rows, shape_of(t));
    fail("replay buffer: {} must have shape [{}, {}], got {}", what, rows, cols, shape_of(t));
  }
}

torch::Tensor read_entry(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::Tensor tensor;
  if (!archive.try_read(key, tensor)) fail("replay buffer checkpoint has no entry '{}'", key);
  return tensor;
}

std::int64_t read_scalar(torch::serialize::InputArchive& archive, const std::string& key) {
  const auto t = read_entry(archive, key);
  if (t.numel() != 1) fail("replay buffer checkpoint entry '{}' is not a single number", key);
  return t.item<std::int64_t>();
}

}  // namespace

ReplayBuffer::ReplayBuffer(std::int64_t capacity, int obs_dim, int action_dim, torch::Device device)
    : capacity_(capacity), obs_dim_(obs_dim), action_dim_(action_dim) {
  if (capacity < 1) fail("replay buffer capacity must be positive (got {})", capacity);
  if (obs_dim < 1 || action_dim < 1)
    fail("replay buffer dimensions must be positive (got obs {}, action {})", obs_dim, action_dim);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  obs_ = torch::zeros({capacity, obs_dim}, options);
  action_ = torch::zeros({capacity, action_dim}, options);
  reward_ = torch::zeros({capacity}, options);
  next_obs_ = torch::zeros({capacity, obs_dim}, options);
  terminated_ = torch::zeros({capacity}, options);
  episode_start_ = torch::zeros({capacity}, torch::kBool);
  staging_ = torch::empty({2 * obs_dim + action_dim + 2}, torch::kFloat32);
}

void ReplayBuffer::add(std::span<const double> obs, std::span<const double> action, double reward,
                       std::span<const double> next_obs, bool terminated, bool episode_start) {
  check_values(obs, obs_dim_, "observation");
  check_values(action, action_dim_, "action");
  check_values({&reward, 1}, 1, "reward");
  check_values(next_obs, obs_dim_, "next observation");
  // Pack the transition into one CPU row, then write it into the slot: directly on the
  // CPU, with one small copy per field on other devices.
  float* packed = staging_.data_ptr<float>();
  float* out = std::copy(obs.begin(), obs.end(), packed);
  out = std::copy(action.begin(), action.end(), out);
  *out++ = static_cast<float>(reward);
  out = std::copy(next_obs.begin(), next_obs.end(), out);
  *out = terminated ? 1.0f : 0.0f;
  const std::int64_t slot = cursor_;
  if (obs_.device().is_cpu()) {
    const float* in = packed;
    std::copy_n(in, obs_dim_, obs_.data_ptr<float>() + slot * obs_dim_);
    in += obs_dim_;
    std::copy_n(in, action_dim_, action_.data_ptr<float>() + slot * action_dim_);
    in += action_dim_;
    reward_.data_ptr<float>()[slot] = *in++;
    std::copy_n(in, obs_dim_, next_obs_.data_ptr<float>() + slot * obs_dim_);
    in += obs_dim_;
    terminated_.data_ptr<float>()[slot] = *in;
  } else {
    torch::NoGradGuard no_grad;
    std::int64_t at = 0;
    const std::initializer_list<std::pair<torch::Tensor*, int>> fields{
        {&obs_, obs_dim_}, {&action_, action_dim_}, {&reward_, 1}, {&next_obs_, obs_dim_}, {&terminated_, 1}};
    for (auto [field, width] : fields) {
      auto row = field->dim() == 2 ? (*field)[slot] : field->narrow(0, slot, 1);
      row.copy_(staging_.narrow(0, at, width));
      at += width;
    }
  }
  episode_start_.data_ptr<bool>()[slot] = episode_start;
  cursor_ = (cursor_ + 1) % capacity_;
  size_ = std::min(size_ + 1, capacity_);
  ++total_added_;
}

void ReplayBuffer::add_batch(const torch::Tensor& obs, const torch::Tensor& action, const torch::Tensor& reward,
                             const torch::Tensor& next_obs, const torch::Tensor& terminated) {
  if (obs.dim() != 2) fail("replay buffer: observations must have shape [batch, {}], got {}", obs_dim_, shape_of(obs));
  const std::int64_t n = obs.size(0);
  check_rows(obs, n, obs_dim_, "observations");
  check_rows(action, n, action_dim_, "actions");
  check_rows(reward, n, 0, "rewards");
  check_rows(next_obs, n, obs_dim_, "next observations");
  check_rows(terminated, n, 0, "terminated flags");
  if (n == 0) return;
  torch::NoGradGuard no_grad;
  const auto as_stored = [&](const torch::Tensor& t) { return t.to(obs_.device(), torch::kFloat32); };
  const Batch rows{as_stored(obs), as_stored(action), as_stored(reward), as_stored(next_obs),
                   as_stored(terminated)};
  const std::int64_t kept = std::min(n, capacity_);
  std::int64_t from = n - kept;
  while (from < n) {  // at most two chunks: up to the end of storage, then from slot 0
    const std::int64_t chunk = std::min(n - from, capacity_ - cursor_);
    write_rows(rows, from, chunk);
    from += chunk;
  }
  total_added_ += n;
}

void ReplayBuffer::write_rows(const Batch& rows, std::int64_t from, std::int64_t n) {
  obs_.narrow(0, cursor_, n).copy_(rows.obs.narrow(0, from, n));
  action_.narrow(0, cursor_, n).copy_(rows.action.narrow(0, from, n));
  reward_.narrow(0, cursor_, n).copy_(rows.reward.narrow(0, from, n));
  next_obs_.narrow(0, cursor_, n).copy_(rows.next_obs.narrow(0, from, n));
  terminated_.narrow(0, cursor_, n).copy_(rows.terminated.narrow(0, from, n));
  episode_start_.narrow(0, cursor_, n).fill_(false);
  cursor_ = (cursor_ + n) % capacity_;
  size_ = std::min(size_ + n, capacity_);
}

Batch ReplayBuffer::gather(const torch::Tensor& slots) const {
  const auto index = slots.to(obs_.device());
  return {obs_.index_select(0, index), action_.index_select(0, index), reward_.index_select(0, index),
          next_obs_.index_select(0, index), terminated_.index_select(0, index)};
}

Batch ReplayBuffer::newest(std::int64_t n) const {
  return gather((insertion_index() >= size_ - n).nonzero().squeeze(1));
}

Batch ReplayBuffer::sample(std::int64_t batch, torch::Generator& gen) const {
  if (size_ == 0) fail("cannot sample from an empty replay buffer");
  if (batch < 1) fail("replay buffer: sample size must be positive (got {})", batch);
  return gather(torch::randint(size_, {batch}, gen, torch::kInt64));
}

Batch ReplayBuffer::sample_weighted(std::int64_t batch, const Weights& weights, torch::Generator& gen) const {
  if (weights.uniform()) return sample(batch, gen);
  if (size_ == 0) fail("cannot sample from an empty replay buffer");
  if (batch < 1) fail("replay buffer: sample size must be positive (got {})", batch);
  // Weights are checked where they are made; the buffer may have grown since.
  if (weights.values().size(0) != size_)
    fail("replay buffer: {} sampling weights for {} stored transitions", weights.values().size(0), size_);
  torch::NoGradGuard no_grad;
  return gather(torch::multinomial(weights.values().to(torch::kFloat64), batch, /*replacement=*/true, gen));
}

Batch ReplayBuffer::all() const {
  return {obs_.narrow(0, 0, size_), action_.narrow(0, 0, size_), reward_.narrow(0, 0, size_),
          next_obs_.narrow(0, 0, size_), terminated_.narrow(0, 0, size_)};
}

torch::Tensor ReplayBuffer::insertion_index() const {
  auto slots = torch::arange(size_, torch::TensorOptions().dtype(torch::kInt64).device(obs_.device()));
  if (size_ < capacity_) return slots;  // not wrapped yet: slot order is insertion order
  return (slots - cursor_).remainder(capacity_);  // the slot at the cursor is the oldest
}

torch::Tensor ReplayBuffer::episode_start_obs() const {
  auto slots = episode_start_.narrow(0, 0, size_).nonzero().flatten();
  if (size_ == capacity_) {
    const auto order = (slots - cursor_).remainder(capacity_).argsort();
    slots = slots.index_select(0, order);
  }
  return obs_.index_select(0, slots.to(obs_.device()));
}

void ReplayBuffer::save(torch::serialize::OutputArchive& archive) const {
  const auto number = [](std::int64_t v) { return torch::tensor(v, torch::kInt64); };
  archive.write("capacity", number(capacity_));
  archive.write("obs_dim", number(obs_dim_));
  archive.write("action_dim", number(action_dim_));
  archive.write("cursor", number(cursor_));
  archive.write("size", number(size_));
  archive.write("total_added", number(total_added_));
  // Clones: a view would serialize its whole storage, i.e. the full capacity.
  const auto batch = all();
  archive.write("obs", batch.obs.clone());
  archive.write("action", batch.action.clone());
  archive.write("reward", batch.reward.clone());
  archive.write("next_obs", batch.next_obs.clone());
  archive.write("terminated", batch.terminated.clone());
  archive.write("episode_start", episode_start_.narrow(0, 0, size_).clone());
}

void ReplayBuffer::load(torch::serialize::InputArchive& archive) {
  const auto expect = [&](const char* key, std::int64_t ours) {
    const std::int64_t saved = read_scalar(archive, key);
    if (saved != ours) fail("replay buffer checkpoint has {} {}, this buffer has {}", key, saved, ours);
  };
  expect("capacity", capacity_);
  expect("obs_dim", obs_dim_);
  expect("action_dim", action_dim_);
  const std::int64_t cursor = read_scalar(archive, "cursor");
  const std::int64_t size = read_scalar(archive, "size");
  const std::int64_t total_added = read_scalar(archive, "total_added");
  if (size < 0 || size > capacity_ || cursor < 0 || cursor >= capacity_ || total_added < size ||
      (size < capacity_ && cursor != size))
    fail("replay buffer checkpoint is inconsistent (size {}, cursor {}, total added {}, capacity {})", size, cursor,
         total_added, capacity_);
  const Batch saved{read_entry(archive, "obs"), read_entry(archive, "action"), read_entry(archive, "reward"),
                    read_entry(archive, "next_obs"), read_entry(archive, "terminated")};
  const auto starts = read_entry(archive, "episode_start");
  check_rows(saved.obs, size, obs_dim_, "checkpoint observations");
  check_rows(saved.action, size, action_dim_, "checkpoint actions");
  check_rows(saved.reward, size, 0, "checkpoint rewards");
  check_rows(saved.next_obs, size, obs_dim_, "checkpoint next observations");
  check_rows(saved.terminated, size, 0, "checkpoint terminated flags");
  check_rows(starts, size, 0, "checkpoint episode starts");
  torch::NoGradGuard no_grad;
  obs_.narrow(0, 0, size).copy_(saved.obs);
  action_.narrow(0, 0, size).copy_(saved.action);
  reward_.narrow(0, 0, size).copy_(saved.reward);
  next_obs_.narrow(0, 0, size).copy_(saved.next_obs);
  terminated_.narrow(0, 0, size).copy_(saved.terminated);
  episode_start_.zero_();
  episode_start_.narrow(0, 0, size).copy_(starts);
  cursor_ = cursor;
  size_ = size;
  total_added_ = total_added;
}

}  // namespace tom::data
