#include "tom/backbones/collector.hpp"

#include <limits>
#include <sstream>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"

namespace tom::backbones {

TimeLimitEnds time_limit_ends_from_name(const std::string& name) {
  if (name == "bootstrap") return TimeLimitEnds::bootstrap;
  if (name == "terminal") return TimeLimitEnds::terminal;
  fail_unknown("unknown time-limit handling '{}' (valid: bootstrap, terminal)", name);
}

Collector::Collector(std::unique_ptr<envs::Env> env, std::uint64_t seed, TimeLimitEnds time_limit_ends)
    : env_(std::move(env)),
      time_limit_ends_(time_limit_ends),
      rng_(seed ^ 0x9e3779b97f4a7c15ULL),
      last_return_(std::numeric_limits<double>::quiet_NaN()),
      last_length_(std::numeric_limits<double>::quiet_NaN()) {
  obs_ = env_->reset(seed);
}

std::vector<double> Collector::random_action() {
  const auto& spec = env_->spec();
  std::vector<double> action(spec.action_dim);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < spec.action_dim; ++i)
    action[i] = spec.action_low[i] + unit(rng_) * (spec.action_high[i] - spec.action_low[i]);
  return action;
}

void Collector::step(const std::vector<double>& action, data::ReplayBuffer& buffer) {
  envs::Step result = env_->step(action);
  const bool done = result.terminated || (result.truncated && time_limit_ends_ == TimeLimitEnds::terminal);
  buffer.add(obs_, action, result.reward, result.obs, done, episode_start_);
  episode_start_ = false;
  episode_return_ += result.reward;
  ++episode_length_;
  if (result.terminated || result.truncated) {
    last_return_ = episode_return_;
    last_length_ = static_cast<double>(episode_length_);
    ++episodes_;
    episode_return_ = 0.0;
    episode_length_ = 0;
    episode_start_ = true;
    obs_ = env_->reset();
  } else {
    obs_ = std::move(result.obs);
  }
}

void Collector::save(torch::serialize::OutputArchive& archive) const {
  write_string(archive, "env_state", env_->save_state());
  std::ostringstream rng;
  rng << rng_;
  write_string(archive, "rng", rng.str());
  archive.write("obs", torch::tensor(obs_, torch::kFloat64));
  write_int(archive, "episode_start", episode_start_);
  write_double(archive, "episode_return", episode_return_);
  write_int(archive, "episode_length", episode_length_);
  write_int(archive, "episodes", episodes_);
  write_double(archive, "last_return", last_return_);
  write_double(archive, "last_length", last_length_);
}

void Collector::load(torch::serialize::InputArchive& archive) {
  env_->load_state(read_string(archive, "env_state", "collector"));
  std::istringstream rng(read_string(archive, "rng", "collector"));
  rng >> rng_;
  if (!rng) fail("collector checkpoint has a corrupt random-generator state");
  const auto obs = read_tensor(archive, "obs", "collector").contiguous();
  if (obs.numel() != env_->spec().obs_dim)
    fail("collector checkpoint holds a {}-dim observation; {} has {}", obs.numel(), env_->spec().name,
         env_->spec().obs_dim);
  obs_.assign(obs.data_ptr<double>(), obs.data_ptr<double>() + obs.numel());
  episode_start_ = read_int(archive, "episode_start", "collector") != 0;
  episode_return_ = read_double(archive, "episode_return", "collector");
  episode_length_ = read_int(archive, "episode_length", "collector");
  episodes_ = read_int(archive, "episodes", "collector");
  last_return_ = read_double(archive, "last_return", "collector");
  last_length_ = read_double(archive, "last_length", "collector");
}

}  // namespace tom::backbones
