#include "tom/objectives/pmac_objective.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"

namespace tom::objectives {
namespace {

constexpr const char* kWhat = "pmac objective";

// Log-density of the diagonal Gaussian (mean, log_std [S, A]) at u [n, S, A], summed over
// the action dimensions, without the constant (it cancels in ratios).
torch::Tensor gaussian_log_density(const torch::Tensor& u, const torch::Tensor& mean, const torch::Tensor& log_std) {
  return (-0.5 * ((u - mean) / log_std.exp()).square() - log_std).sum(-1);
}

}  // namespace

void PmacSettings::check() {
  check_settings("pmac", *this);
  if (!(decay < 1.0)) fail("pmac.decay must be below 1 (got {}): the newest block would get no weight", decay);
  if (policy_change == "update" && form != "geometric")
    fail("pmac.policy_change = \"update\" needs pmac.form = \"geometric\" (the tv form keeps a policy snapshot per "
         "block, too many at one per update)");
}

std::vector<double> estimate_tv(const agents::PolicySnapshots& agent, const torch::Tensor& states,
                                const torch::Tensor& current, const std::vector<torch::Tensor>& snapshots,
                                int samples, torch::Generator& gen) {
  if (!states.defined() || states.dim() != 2 || states.size(0) < 1 || states.size(1) != agent.obs_dim())
    fail("pmac: TV states must have shape [S >= 1, {}], got {}", agent.obs_dim(),
         states.defined() ? c10::str(states.sizes()) : "undefined");
  if (samples < 1) fail("pmac: TV needs at least one sample per state (got {})", samples);
  torch::NoGradGuard no_grad;
  const auto p = agent.policy_gaussian(states, current);
  const auto p_mean = p.mean.to(torch::kCPU, torch::kFloat64), p_log_std = p.log_std.to(torch::kCPU, torch::kFloat64);
  const auto noise = torch::randn({samples, p_mean.size(0), p_mean.size(1)}, gen).to(torch::kFloat64);
  const auto u = p_mean + p_log_std.exp() * noise;  // [n, S, A] draws from the current policy
  const auto log_p = gaussian_log_density(u, p_mean, p_log_std);
  std::vector<double> tv;
  tv.reserve(snapshots.size());
  for (const auto& snapshot : snapshots) {
    const auto q = agent.policy_gaussian(states, snapshot);
    const auto log_q =
        gaussian_log_density(u, q.mean.to(torch::kCPU, torch::kFloat64), q.log_std.to(torch::kCPU, torch::kFloat64));
    // 1 - q/p; exp of a large log-ratio is inf and clamps to 0.
    tv.push_back((1.0 - (log_q - log_p).exp()).clamp_min(0.0).mean().item<double>());
  }
  return tv;
}

PmacObjective::PmacObjective(PmacSettings settings) : settings_(std::move(settings)) {
  settings_.check();
  form_ = settings_.form == "tv" ? Form::tv : Form::geometric;
  policy_change_ = settings_.policy_change == "update" ? PolicyChange::update : PolicyChange::fit;
}

void PmacObjective::check_insertions(std::int64_t total) const {
  const std::int64_t last_end = blocks_.empty() ? 0 : blocks_.back().end;
  if (total < last_end)
    fail("pmac: the replay buffer has {} insertions, but the previous plan saw {}; the objective's state does not "
         "belong to this buffer",
         total, last_end);
}

void PmacObjective::record_block(const FitContext& context) {
  const auto& replay = context.replay;
  const std::int64_t total = replay.total_added();
  check_insertions(total);
  const std::int64_t last_end = blocks_.empty() ? 0 : blocks_.back().end;
  const bool tv = form_ == Form::tv;
  torch::Tensor snapshot;
  if (tv) {
    snapshot = context.snapshots("pmac").policy_parameters().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    if (snapshot.dim() != 1) fail("pmac: the agent's policy snapshot must be a flat tensor");
  }
  if (!planned_) {
    // The first block: everything inserted so far (random exploration, no snapshot of
    // its own); the tv form uses the first snapshot for it.
    blocks_.push_back({0, total, snapshot});
  } else if (total > last_end || !tv) {
    // geometric: an empty block still counts as a policy change (it just holds nothing).
    // tv: an empty block carries no transitions, so it is not kept.
    blocks_.push_back({last_end, total, pending_});
  }
  pending_ = snapshot;
  planned_ = true;
  drop_evicted(total - replay.size());
  if (tv)  // snapshots held: one per block plus pending_
    while (blocks_.size() >= 2 && blocks_.size() + 1 > static_cast<std::size_t>(settings_.max_snapshots))
      merge_oldest();
}

void PmacObjective::drop_evicted(std::int64_t oldest) {
  // Blocks whose transitions were all evicted no longer matter (the newest is kept so
  // the boundary survives).
  std::size_t evicted = 0;
  while (evicted + 1 < blocks_.size() && blocks_[evicted].end <= oldest) ++evicted;
  blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(evicted));
  dropped_ += static_cast<std::int64_t>(evicted);
}

void PmacObjective::policy_updated(std::int64_t total_added) {
  if (policy_change_ != PolicyChange::update) return;
  check_insertions(total_added);
  const std::int64_t last_end = blocks_.empty() ? 0 : blocks_.back().end;
  // A burst with no new transition since the last one changes nothing, as in the
  // authors' code (their decay happens when the next transition arrives).
  if (total_added > last_end) blocks_.push_back({last_end, total_added, {}});
}

void PmacObjective::merge_oldest() {
  // The merged block keeps the NEWER snapshot of the pair (that of blocks_[1]): it is the
  // closer of the two to the current policy and to the later, usually larger part.
  blocks_[1].begin = blocks_[0].begin;
  blocks_.erase(blocks_.begin());
}

void PmacObjective::compute_block_weights(const FitContext& context) {
  const std::size_t k = blocks_.size();
  if (form_ == Form::geometric) {
    // Block with global index g of K (0 = the first block ever): mass decay^(K-1) for
    // g = 0, else (1 - decay) decay^(K-1-g); per transition mass / block size. Kept in
    // log space (decay^K underflows after a few thousand fits).
    const std::int64_t total_blocks = dropped_ + static_cast<std::int64_t>(k);
    const double log_decay = std::log(settings_.decay), log_rest = std::log1p(-settings_.decay);
    std::vector<double> log_weight(k);
    double top = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t g = dropped_ + static_cast<std::int64_t>(j);
      const std::int64_t size = blocks_[j].end - blocks_[j].begin;
      if (size == 0) {
        log_weight[j] = -std::numeric_limits<double>::infinity();
        continue;
      }
      const double log_mass = g == 0 ? static_cast<double>(total_blocks - 1) * log_decay
                                     : log_rest + static_cast<double>(total_blocks - 1 - g) * log_decay;
      log_weight[j] = log_mass - std::log(static_cast<double>(size));
      top = std::max(top, log_weight[j]);
    }
    // Weights relative to the largest one; absolute masses are exp(log_weight) * size.
    for (std::size_t j = 0; j < k; ++j) {
      blocks_[j].tv = 0.0;
      blocks_[j].weight = std::exp(log_weight[j] - top);
    }
    return;
  }
  // tv
  const auto current = pending_;
  for (const auto& block : blocks_)
    if (block.policy.numel() != current.numel())
      fail("pmac: a stored policy snapshot has {} parameters, the agent's policy {} (checkpoint of another agent?)",
           block.policy.numel(), current.numel());
  const auto obs = context.replay.all().obs;
  const auto rows = torch::randint(context.replay.size(), {settings_.tv_states}, context.gen, torch::kInt64);
  const auto states = obs.index_select(0, rows.to(obs.device()));
  std::vector<torch::Tensor> snapshots;
  snapshots.reserve(k);
  for (const auto& block : blocks_) snapshots.push_back(block.policy);
  const auto tv = estimate_tv(context.snapshots("pmac"), states, current, snapshots, settings_.tv_samples, context.gen);
  for (std::size_t j = 0; j < k; ++j) {
    blocks_[j].tv = tv[j];
    blocks_[j].weight = 1.0 / std::max(tv[j], settings_.min_tv);
  }
}

FitPlan PmacObjective::plan(const FitContext& context) {
  const auto& replay = context.replay;
  if (replay.size() == 0) fail("pmac: the replay buffer is empty");
  // Per-update policy changes: the blocks were closed by policy_updated(); the
  // transitions since the last update form the newest, still open block for this plan.
  bool open_block = false;
  if (policy_change_ == PolicyChange::update) {
    const std::int64_t total = replay.total_added(), last_end = blocks_.empty() ? 0 : blocks_.back().end;
    check_insertions(total);
    drop_evicted(total - replay.size());
    open_block = total > last_end;
    if (open_block) blocks_.push_back({last_end, total, {}});
  } else {
    record_block(context);
  }
  compute_block_weights(context);

  // Each stored transition's insertion number -> its block (the first block whose end
  // is above it) -> the block's weight.
  const std::int64_t n = replay.size(), total = replay.total_added();
  const auto inserted = replay.insertion_index().to(torch::kCPU) + (total - n);
  std::vector<std::int64_t> ends;
  std::vector<double> weights;
  for (const auto& block : blocks_) {
    ends.push_back(block.end);
    weights.push_back(block.weight);
  }
  const auto ends_t = torch::tensor(ends, torch::kInt64);
  const auto block_of = torch::searchsorted(ends_t, inserted, /*out_int32=*/false, /*right=*/true);
  if (inserted.min().item<std::int64_t>() < blocks_.front().begin ||
      block_of.max().item<std::int64_t>() >= static_cast<std::int64_t>(blocks_.size()))
    fail("pmac: internal error: replay transitions outside the recorded blocks");
  const auto per_block = torch::tensor(weights, torch::kFloat64);
  auto w = per_block.index_select(0, block_of);
  const double sum = w.sum().item<double>();
  if (!(sum > 0) || !std::isfinite(sum)) fail("pmac: all stored transitions got zero weight");
  const auto newest = blocks_.back();
  newest_share_ = w.masked_select(inserted >= newest.begin).sum().item<double>() / sum;
  w = w * (static_cast<double>(n) / sum);
  if (open_block) blocks_.pop_back();
  FitPlan plan{replay_transitions(replay)};
  plan.fit_weights = data::Weights::checked(w.to(torch::kFloat32), n, "objective 'pmac'");
  plan.start_weights = plan.fit_weights;
  return plan;
}

void PmacObjective::report(Figures& out) const {
  out("pmac_blocks", static_cast<double>(blocks_.size()));
  out("pmac_newest_share", newest_share_);
  if (form_ == Form::tv) {
    out("pmac_tv_newest", blocks_.empty() ? 0.0 : blocks_.back().tv);
    out("pmac_tv_oldest", blocks_.empty() ? 0.0 : blocks_.front().tv);
  }
}

std::vector<PmacObjective::BlockView> PmacObjective::blocks() const {
  std::vector<BlockView> out;
  for (const auto& b : blocks_) out.push_back({b.begin, b.end, b.tv, b.weight});
  return out;
}

void PmacObjective::save(torch::serialize::OutputArchive& archive) const {
  write_string(archive, "form", settings_.form);
  write_int(archive, "planned", planned_ ? 1 : 0);
  write_int(archive, "dropped", dropped_);
  std::vector<std::int64_t> begins, ends;
  for (const auto& b : blocks_) {
    begins.push_back(b.begin);
    ends.push_back(b.end);
  }
  archive.write("begins", torch::tensor(begins, torch::kInt64));
  archive.write("ends", torch::tensor(ends, torch::kInt64));
  write_double(archive, "newest_share", newest_share_);
  if (form_ == Form::tv && planned_) {
    std::vector<torch::Tensor> policies;
    std::vector<double> tvs;
    for (const auto& b : blocks_) {
      policies.push_back(b.policy);
      tvs.push_back(b.tv);
    }
    archive.write("policies", torch::stack(policies));
    archive.write("tvs", torch::tensor(tvs, torch::kFloat64));
    archive.write("pending", pending_);
  }
}

void PmacObjective::load(torch::serialize::InputArchive& archive) {
  const auto form = read_string(archive, "form", kWhat);
  if (form != settings_.form)
    fail("pmac checkpoint is of form '{}', but pmac.form is '{}' (the block state differs between forms)", form,
         settings_.form);
  const bool planned = read_int(archive, "planned", kWhat) != 0;
  const std::int64_t dropped = read_int(archive, "dropped", kWhat);
  const auto begins = read_tensor(archive, "begins", kWhat).to(torch::kInt64);
  const auto ends = read_tensor(archive, "ends", kWhat).to(torch::kInt64);
  const double newest_share = read_double(archive, "newest_share", kWhat);
  const std::int64_t k = begins.numel();
  // A plan always leaves blocks; without a plan, only policy_updated() (policy_change =
  // update) makes them.
  const bool blocks_without_plan = !planned && k > 0 && policy_change_ != PolicyChange::update;
  if (begins.dim() != 1 || ends.dim() != 1 || ends.numel() != k || dropped < 0 || (planned && k == 0) ||
      blocks_without_plan)
    fail("pmac checkpoint is inconsistent ({} block starts, {} block ends, planned {})", begins.numel(),
         ends.numel(), planned);
  std::vector<Block> blocks;
  for (std::int64_t j = 0; j < k; ++j) {
    const std::int64_t b = begins[j].item<std::int64_t>(), e = ends[j].item<std::int64_t>();
    if (b < 0 || e < b || (j > 0 && b != blocks.back().end))
      fail("pmac checkpoint is inconsistent: block {} spans [{}, {})", j, b, e);
    blocks.push_back({b, e, {}});
  }
  torch::Tensor pending;
  if (form_ == Form::tv && planned) {
    const auto policies = read_tensor(archive, "policies", kWhat);
    const auto tvs = read_tensor(archive, "tvs", kWhat).to(torch::kFloat64);
    pending = read_tensor(archive, "pending", kWhat).to(torch::kFloat32).contiguous();
    if (policies.dim() != 2 || policies.size(0) != k || tvs.numel() != k || pending.dim() != 1 ||
        policies.size(1) != pending.numel())
      fail("pmac checkpoint is inconsistent: {} blocks but snapshots of shape {} and pending snapshot of shape {}", k,
           c10::str(policies.sizes()), c10::str(pending.sizes()));
    for (std::int64_t j = 0; j < k; ++j) {
      blocks[j].policy = policies[j].to(torch::kFloat32).clone();
      blocks[j].tv = tvs[j].item<double>();
      blocks[j].weight = 1.0 / std::max(blocks[j].tv, settings_.min_tv);
    }
  }
  blocks_ = std::move(blocks);
  dropped_ = dropped;
  pending_ = pending;
  planned_ = planned;
  newest_share_ = newest_share;
}

}  // namespace tom::objectives
