#pragma once
// Replay ring buffer of transitions, stored as contiguous float32 tensors on one device.
// The same class holds real environment transitions and model rollouts (add_batch).
//
// Slot order: storage rows are "slots"; once the buffer is full the newest transition
// overwrites the oldest slot. all(), insertion_index() and the weights given to
// sample_weighted() all use slot order (no reordering copy); insertion_index() tells
// how old each slot is.
#include <cstdint>
#include <span>
#include <vector>

#include <torch/torch.h>

#include "tom/data/weights.hpp"

namespace tom::data {

// A set of transitions: obs [B, O], action [B, A], reward [B], next_obs [B, O],
// terminated [B] (float32, 1 = the episode ended in next_obs, so no bootstrapping).
struct Batch {
  torch::Tensor obs, action, reward, next_obs, terminated;
  std::int64_t size() const { return obs.size(0); }
};

class ReplayBuffer {
 public:
  ReplayBuffer(std::int64_t capacity, int obs_dim, int action_dim, torch::Device device = torch::kCPU);

  // One environment transition. episode_start marks `obs` as the first observation of a
  // real episode (see episode_start_obs()). Throws tom::Error on wrong sizes or NaN/inf.
  void add(std::span<const double> obs, std::span<const double> action, double reward,
           std::span<const double> next_obs, bool terminated, bool episode_start = false);
  // Many transitions at once (model rollouts): tensors shaped as in Batch (terminated may
  // be bool or float), on any device. If there are more than capacity() rows, only the
  // last capacity() are kept. Values are not checked for NaN (that would cost a pass).
  void add_batch(const torch::Tensor& obs, const torch::Tensor& action, const torch::Tensor& reward,
                 const torch::Tensor& next_obs, const torch::Tensor& terminated);
  void add_batch(const Batch& batch) {
    add_batch(batch.obs, batch.action, batch.reward, batch.next_obs, batch.terminated);
  }

  std::int64_t size() const { return size_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t total_added() const { return total_added_; }  // including overwritten ones
  int obs_dim() const { return obs_dim_; }
  int action_dim() const { return action_dim_; }
  torch::Device device() const { return obs_.device(); }

  // `batch` transitions drawn uniformly with replacement (only those rows are copied).
  Batch sample(std::int64_t batch, torch::Generator& gen) const;
  // Drawn with replacement, with probability proportional to the weight of each slot
  // (one weight per stored transition, else tom::Error); uniform weights draw as sample().
  Batch sample_weighted(std::int64_t batch, const Weights& weights, torch::Generator& gen) const;

  // The stored transitions in slot order, as views (no copy; invalidated by later adds).
  Batch all() const;
  // [size()] int64 in slot order: the insertion rank of each stored transition,
  // 0 = oldest still stored, size()-1 = newest.
  torch::Tensor insertion_index() const;
  // Copies of the newest min(n, size()) transitions, in slot order.
  Batch newest(std::int64_t n) const;
  // [E, O] first observations of the real episodes whose first transition is still
  // stored, oldest first (used as initial states s0).
  torch::Tensor episode_start_obs() const;

  // Everything needed to continue exactly: contents, cursor, counters, episode starts.
  // Use one nested archive per buffer. load() throws tom::Error naming a mismatch of
  // capacity or dimensions.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  Batch gather(const torch::Tensor& slots) const;
  // Writes rows [from, from + n) of the given tensors into slots [cursor, cursor + n) (no wrap).
  void write_rows(const Batch& rows, std::int64_t from, std::int64_t n);

  std::int64_t capacity_;
  int obs_dim_, action_dim_;
  torch::Tensor obs_, action_, reward_, next_obs_, terminated_;
  torch::Tensor episode_start_;  // [capacity] bool, on the CPU: slot holds the first step of an episode
  torch::Tensor staging_;        // one transition packed as [obs, action, reward, next_obs, terminated] (CPU)
  std::int64_t cursor_ = 0;      // next slot to write
  std::int64_t size_ = 0;
  std::int64_t total_added_ = 0;
};

}  // namespace tom::data
