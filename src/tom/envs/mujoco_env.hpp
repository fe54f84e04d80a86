#pragma once
// The MuJoCo mechanics shared by every task, following Gymnasium's MujocoEnv:
//   step:  the action goes into data.ctrl unchanged (no clipping: MuJoCo clamps the force
//          to ctrlrange itself, and control costs see the unclipped action), then frame_skip
//          calls of mj_step, then mj_rnePostConstraint once (only for tasks that read contact
//          forces; it fills cfrc_ext and changes nothing else the tasks read).
//   reset: mj_resetData, qpos = qpos0 + noise, qvel = noise (independent per entry, a free
//          joint's quaternion is not renormalised), then mj_forward.
//   time limit: the step that reaches max_episode_steps reports truncated (Gymnasium's
//          TimeLimit: even when it also terminates).
// A task (tasks.cpp) adds its observation, health check and the few reward settings.
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <mujoco/mujoco.h>

#include "tom/envs/env.hpp"
#include "tom/envs/registry.hpp"

namespace tom::envs {

struct ModelDeleter {
  void operator()(mjModel* model) const { mj_deleteModel(model); }
};
struct DataDeleter {
  void operator()(mjData* data) const { mj_deleteData(data); }
};
using ModelPtr = std::unique_ptr<mjModel, ModelDeleter>;
using DataPtr = std::unique_ptr<mjData, DataDeleter>;

// Loads an MJCF model: `model_file` from disk when given, else the embedded model
// `embedded_name` (assets/mujoco). Throws tom::Error with MuJoCo's message on failure.
ModelPtr load_model(const std::string& embedded_name, const std::string& model_file = "");

// Which x coordinate's change over a step, divided by dt, is the forward velocity.
enum class ForwardCoordinate {
  kRootSlide,     // qpos[0] (planar robots, swimmer)
  kTorsoOrigin,   // x of the "torso" body frame origin, data.xpos (Ant)
  kCenterOfMass,  // x of the whole-body centre of mass from xipos and body_mass (Humanoid)
};

// reward = forward_weight * vx + healthy term - ctrl_cost_weight * sum(a^2) - contact cost.
struct RewardWeights {
  double forward = 0.0;
  double ctrl_cost = 0.0;
  double healthy = 0.0;  // paid per step while healthy
  // Paper / v4 forms also pay it on the step that terminates; v5 pays 0 there.
  bool healthy_on_terminal_step = true;
};

// Reset noise: qpos entries + U(-scale, scale); qvel entries + U(-scale, scale), or
// scale * N(0, 1) when qvel_gaussian.
struct ResetNoise {
  double scale = 0.0;
  bool qvel_gaussian = false;
};

// Everything a task fixes about the shared mechanics.
struct TaskSetup {
  std::string name;
  std::string model;  // embedded file name
  int nq = 0, nv = 0, nu = 0;  // checked against the loaded model
  int frame_skip = 1;
  int obs_dim = 0;
  ForwardCoordinate forward = ForwardCoordinate::kRootSlide;
  RewardWeights reward;
  ResetNoise noise;
  bool needs_contact_forces = false;  // call mj_rnePostConstraint after the frame-skip loop
};

class MujocoEnv : public Env {
 public:
  ~MujocoEnv() override = default;
  MujocoEnv(const MujocoEnv&) = delete;
  MujocoEnv& operator=(const MujocoEnv&) = delete;

  const EnvSpec& spec() const override { return spec_; }
  std::vector<double> reset(std::optional<std::uint64_t> seed = std::nullopt) override;
  // Actions outside [action_low, action_high] are passed on unchanged (see top of file).
  Step step(std::span<const double> action) override;
  // The whole mjData buffer (state, warm start, the lagged kinematics), time, step count,
  // end flag and generator state.
  std::string save_state() const override;
  void load_state(const std::string& bytes) override;

  // Sets the state and runs mj_forward (as Gymnasium's set_state), starting a fresh
  // episode at step 0. Throws tom::Error on wrong sizes. Used by tests.
  void set_state(std::span<const double> qpos, std::span<const double> qvel);
  std::span<const double> qpos() const { return {data_->qpos, static_cast<std::size_t>(model_->nq)}; }
  std::span<const double> qvel() const { return {data_->qvel, static_cast<std::size_t>(model_->nv)}; }
  std::vector<double> observation() const;
  int frame_skip() const { return setup_.frame_skip; }
  const mjModel& model() const { return *model_; }
  const mjData& data() const { return *data_; }

 protected:
  MujocoEnv(TaskSetup setup, const EnvOptions& options);

  virtual void write_observation(double* out) const = 0;
  // The task's own health check on the current state; unhealthy = terminated.
  // Tasks that never terminate keep the default.
  virtual bool is_healthy() const { return true; }
  virtual double contact_cost() const { return 0.0; }

  // Writes qpos[qpos_start:] then qvel (each clipped to +-qvel_clip when given); returns
  // the position after the last entry written.
  double* write_positions_and_velocities(double* out, int qpos_start,
                                         std::optional<double> qvel_clip = std::nullopt) const;

 private:
  double forward_position() const;

  TaskSetup setup_;
  EnvSpec spec_;
  ModelPtr model_;
  DataPtr data_;
  int torso_body_ = -1;           // for ForwardCoordinate::kTorsoOrigin
  double total_mass_ = 0.0;       // for ForwardCoordinate::kCenterOfMass
  std::mt19937_64 rng_;
  int steps_ = 0;
  bool episode_over_ = false;
};

// make_env, typed: for tests and tools that need the state access above.
std::unique_ptr<MujocoEnv> make_mujoco_env(const std::string& name, const EnvOptions& options = {});

}  // namespace tom::envs
