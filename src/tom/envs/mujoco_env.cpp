#include "tom/envs/mujoco_env.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <sstream>
#include <type_traits>

#include "tom/core/error.hpp"
#include "tom/envs/embedded_models.hpp"

namespace tom::envs {
namespace {

// MuJoCo 2.2.2 reads XML from a virtual file system (a ~2 MB struct, so on the heap).
struct VfsDeleter {
  void operator()(mjVFS* vfs) const {
    mj_deleteVFS(vfs);
    delete vfs;
  }
};

ModelPtr load_embedded(const std::string& name) {
  const auto& models = embedded_models();
  const auto found = models.find(name);
  if (found == models.end()) fail("no embedded MuJoCo model named '{}'", name);
  const std::string& text = found->second;

  std::unique_ptr<mjVFS, VfsDeleter> vfs(new mjVFS);
  mj_defaultVFS(vfs.get());
  if (mj_makeEmptyFileVFS(vfs.get(), name.c_str(), static_cast<int>(text.size())) != 0)
    fail("cannot create the in-memory file for MuJoCo model '{}'", name);
  const int index = mj_findFileVFS(vfs.get(), name.c_str());
  std::memcpy(vfs->filedata[index], text.data(), text.size());

  std::array<char, 1000> error{};
  ModelPtr model(mj_loadXML(name.c_str(), vfs.get(), error.data(), static_cast<int>(error.size())));
  if (!model) fail("cannot load embedded MuJoCo model '{}': {}", name, error.data());
  return model;
}

// Minimal byte (de)serialisation for save_state/load_state (same machine, same build).
class ByteWriter {
 public:
  template <class T>
  void put(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    put_bytes(&value, sizeof(T));
  }
  void put_string(const std::string& text) {
    put<std::uint64_t>(text.size());
    put_bytes(text.data(), text.size());
  }
  void put_bytes(const void* data, std::size_t size) { bytes_.append(static_cast<const char*>(data), size); }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class ByteReader {
 public:
  ByteReader(const std::string& bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {}
  template <class T>
  T get() {
    T value;
    get_bytes(&value, sizeof(T));
    return value;
  }
  std::string get_string() {
    const auto size = get<std::uint64_t>();
    if (size > bytes_.size() - offset_) corrupt();
    std::string text = bytes_.substr(offset_, size);
    offset_ += size;
    return text;
  }
  void get_bytes(void* out, std::size_t size) {
    if (size > bytes_.size() - offset_) corrupt();
    std::memcpy(out, bytes_.data() + offset_, size);
    offset_ += size;
  }
  void expect_end() const {
    if (offset_ != bytes_.size()) corrupt();
  }
  [[noreturn]] void corrupt() const { fail("cannot load environment state: {} (truncated or corrupt)", what_); }

 private:
  const std::string& bytes_;
  std::string what_;
  std::size_t offset_ = 0;
};

constexpr std::uint64_t kStateMagic = 0x31766e456d6f74;  // "tomEnv1"

}  // namespace

ModelPtr load_model(const std::string& embedded_name, const std::string& model_file) {
  if (model_file.empty()) return load_embedded(embedded_name);
  std::array<char, 1000> error{};
  ModelPtr model(mj_loadXML(model_file.c_str(), nullptr, error.data(), static_cast<int>(error.size())));
  if (!model) fail("cannot load MuJoCo model file '{}': {}", model_file, error.data());
  return model;
}

MujocoEnv::MujocoEnv(TaskSetup setup, const EnvOptions& options)
    : setup_(std::move(setup)), model_(load_model(setup_.model, options.model_file)) {
  const mjModel& m = *model_;
  if (m.nq != setup_.nq || m.nv != setup_.nv || m.nu != setup_.nu)
    fail("model for task '{}' has nq={} nv={} nu={}, the task needs nq={} nv={} nu={}", setup_.name, m.nq,
         m.nv, m.nu, setup_.nq, setup_.nv, setup_.nu);
  if (options.max_episode_steps < 1)
    fail("max_episode_steps must be at least 1, got {}", options.max_episode_steps);
  data_.reset(mj_makeData(model_.get()));
  if (!data_) fail("MuJoCo could not allocate data for task '{}'", setup_.name);

  if (setup_.forward == ForwardCoordinate::kTorsoOrigin) {
    torso_body_ = mj_name2id(model_.get(), mjOBJ_BODY, "torso");
    if (torso_body_ < 0) fail("model for task '{}' has no body named 'torso'", setup_.name);
  }
  for (int body = 0; body < m.nbody; ++body) total_mass_ += m.body_mass[body];

  spec_.name = setup_.name;
  spec_.obs_dim = setup_.obs_dim;
  spec_.action_dim = m.nu;
  for (int u = 0; u < m.nu; ++u) {
    spec_.action_low.push_back(m.actuator_ctrlrange[2 * u]);
    spec_.action_high.push_back(m.actuator_ctrlrange[2 * u + 1]);
  }
  spec_.max_episode_steps = options.max_episode_steps;
  spec_.dt = m.opt.timestep * setup_.frame_skip;
  episode_over_ = true;  // step() needs a reset() first, as in Gymnasium
}

std::vector<double> MujocoEnv::reset(std::optional<std::uint64_t> seed) {
  if (seed) rng_.seed(*seed);
  const mjModel& m = *model_;
  mjData& d = *data_;
  mj_resetData(model_.get(), data_.get());

  const double scale = setup_.noise.scale;
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int i = 0; i < m.nq; ++i) d.qpos[i] = m.qpos0[i] + uniform(rng_);
  for (int i = 0; i < m.nv; ++i) d.qvel[i] = setup_.noise.qvel_gaussian ? scale * normal(rng_) : uniform(rng_);

  mj_forward(model_.get(), data_.get());
  steps_ = 0;
  episode_over_ = false;
  return observation();
}

void MujocoEnv::set_state(std::span<const double> qpos, std::span<const double> qvel) {
  const mjModel& m = *model_;
  if (qpos.size() != static_cast<std::size_t>(m.nq) || qvel.size() != static_cast<std::size_t>(m.nv))
    fail("set_state for '{}' needs {} qpos and {} qvel entries, got {} and {}", spec_.name, m.nq, m.nv,
         qpos.size(), qvel.size());
  std::copy(qpos.begin(), qpos.end(), data_->qpos);
  std::copy(qvel.begin(), qvel.end(), data_->qvel);
  mj_forward(model_.get(), data_.get());
  steps_ = 0;
  episode_over_ = false;
}

Step MujocoEnv::step(std::span<const double> action) {
  if (episode_over_)
    fail("step() on '{}' before reset() or after the episode ended (terminated or truncated); call reset()",
         spec_.name);
  if (action.size() != static_cast<std::size_t>(spec_.action_dim))
    fail("action for '{}' must have {} entries, got {}", spec_.name, spec_.action_dim, action.size());
  double squared_action = 0.0;
  for (std::size_t i = 0; i < action.size(); ++i) {
    if (!std::isfinite(action[i])) fail("action entry {} for '{}' is not finite ({})", i, spec_.name, action[i]);
    squared_action += action[i] * action[i];
  }

  const double x_before = forward_position();
  std::copy(action.begin(), action.end(), data_->ctrl);
  for (int i = 0; i < setup_.frame_skip; ++i) mj_step(model_.get(), data_.get());
  if (setup_.needs_contact_forces) mj_rnePostConstraint(model_.get(), data_.get());
  const double forward_velocity = (forward_position() - x_before) / spec_.dt;

  Step out;
  const bool healthy = is_healthy();
  const RewardWeights& w = setup_.reward;
  const double healthy_reward = (healthy || w.healthy_on_terminal_step) ? w.healthy : 0.0;
  out.reward = w.forward * forward_velocity + healthy_reward - w.ctrl_cost * squared_action - contact_cost();
  out.terminated = !healthy;
  out.truncated = ++steps_ >= spec_.max_episode_steps;
  out.obs = observation();
  episode_over_ = out.terminated || out.truncated;
  return out;
}

std::string MujocoEnv::save_state() const {
  ByteWriter out;
  out.put(kStateMagic);
  out.put_string(spec_.name);
  out.put<std::int64_t>(data_->nbuffer);
  out.put(data_->time);
  out.put(steps_);
  out.put<std::uint8_t>(episode_over_ ? 1 : 0);
  std::ostringstream rng_text;
  rng_text << rng_;
  out.put_string(rng_text.str());
  // The buffer holds every mjData array: qpos, qvel, act, ctrl, qacc_warmstart and the
  // kinematics the next step reads before it simulates.
  out.put_bytes(data_->buffer, static_cast<std::size_t>(data_->nbuffer));
  return out.take();
}

void MujocoEnv::load_state(const std::string& bytes) {
  ByteReader in(bytes, "state of '" + spec_.name + "'");
  if (in.get<std::uint64_t>() != kStateMagic) in.corrupt();
  const std::string name = in.get_string();
  if (name != spec_.name) fail("cannot load environment state of '{}' into '{}'", name, spec_.name);
  if (in.get<std::int64_t>() != data_->nbuffer) fail("cannot load environment state: its model differs from '{}'", spec_.name);
  const auto time = in.get<double>();
  const auto steps = in.get<int>();
  const auto episode_over = in.get<std::uint8_t>();
  if (episode_over > 1 || steps < 0) in.corrupt();
  std::istringstream rng_text(in.get_string());
  std::mt19937_64 rng;
  rng_text >> rng;
  if (!rng_text) in.corrupt();
  // Read into a copy first, so a corrupt state leaves this environment untouched.
  std::string buffer(static_cast<std::size_t>(data_->nbuffer), '\0');
  in.get_bytes(buffer.data(), buffer.size());
  in.expect_end();

  std::memcpy(data_->buffer, buffer.data(), buffer.size());
  data_->time = time;
  steps_ = steps;
  episode_over_ = episode_over == 1;
  rng_ = rng;
}

std::vector<double> MujocoEnv::observation() const {
  std::vector<double> obs(static_cast<std::size_t>(spec_.obs_dim));
  write_observation(obs.data());
  return obs;
}

double* MujocoEnv::write_positions_and_velocities(double* out, int qpos_start,
                                                  std::optional<double> qvel_clip) const {
  out = std::copy(data_->qpos + qpos_start, data_->qpos + model_->nq, out);
  if (!qvel_clip) return std::copy(data_->qvel, data_->qvel + model_->nv, out);
  for (int i = 0; i < model_->nv; ++i) *out++ = std::clamp(data_->qvel[i], -*qvel_clip, *qvel_clip);
  return out;
}

// Reads the fields Gymnasium reads, at the same points: after mj_step, xpos/xipos hold
// the kinematics of the start of the last substep, and Gymnasium uses those lagged values.
double MujocoEnv::forward_position() const {
  switch (setup_.forward) {
    case ForwardCoordinate::kRootSlide:
      return data_->qpos[0];
    case ForwardCoordinate::kTorsoOrigin:
      return data_->xpos[3 * torso_body_];
    case ForwardCoordinate::kCenterOfMass: {
      double weighted_x = 0.0;
      for (int body = 0; body < model_->nbody; ++body) weighted_x += model_->body_mass[body] * data_->xipos[3 * body];
      return weighted_x / total_mass_;
    }
  }
  return 0.0;
}

}  // namespace tom::envs
