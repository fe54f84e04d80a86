// Our MJCF models (assets/mujoco) against Gymnasium's reference files: the same compiled
// physics parameters, and the same env step (obs, reward, terminated) from many states.
#include <gtest/gtest.h>

#include <random>

#include "env_test_util.hpp"
#include "tom/envs/mujoco_env.hpp"

namespace tom::envs {
namespace {

using testing::close;
using testing::random_action;

class Parity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::reference_available())
      GTEST_SKIP() << "reference models not found in " << testing::kReferenceDir << "; parity not checked";
    ours_ = make_mujoco_env(GetParam());
    reference_ = make_mujoco_env(GetParam(), {.model_file = testing::reference_model_file(GetParam())});
  }

  std::unique_ptr<MujocoEnv> ours_, reference_;
};

void expect_arrays_near(const char* what, const mjtNum* ours, const mjtNum* reference, int count) {
  for (int i = 0; i < count; ++i) EXPECT_NEAR(ours[i], reference[i], 1e-9) << what << "[" << i << "]";
}

void expect_ints_equal(const char* what, const int* ours, const int* reference, int count) {
  for (int i = 0; i < count; ++i) EXPECT_EQ(ours[i], reference[i]) << what << "[" << i << "]";
}

TEST_P(Parity, CompiledModelsMatch) {
  const mjModel& a = ours_->model();
  const mjModel& b = reference_->model();
  ASSERT_EQ(a.nq, b.nq);
  ASSERT_EQ(a.nv, b.nv);
  ASSERT_EQ(a.nu, b.nu);
  ASSERT_EQ(a.nbody, b.nbody);
  ASSERT_EQ(a.ngeom, b.ngeom);
  ASSERT_EQ(a.njnt, b.njnt);
  ASSERT_EQ(a.ntendon, b.ntendon);
  EXPECT_EQ(a.opt.timestep, b.opt.timestep);
  EXPECT_EQ(a.opt.integrator, b.opt.integrator);
  EXPECT_EQ(a.opt.solver, b.opt.solver);
  EXPECT_EQ(a.opt.iterations, b.opt.iterations);
  EXPECT_EQ(a.opt.density, b.opt.density);
  EXPECT_EQ(a.opt.viscosity, b.opt.viscosity);
  expect_arrays_near("gravity", a.opt.gravity, b.opt.gravity, 3);
  expect_arrays_near("qpos0", a.qpos0, b.qpos0, a.nq);
  expect_arrays_near("body_mass", a.body_mass, b.body_mass, a.nbody);
  expect_arrays_near("body_pos", a.body_pos, b.body_pos, 3 * a.nbody);
  expect_arrays_near("body_ipos", a.body_ipos, b.body_ipos, 3 * a.nbody);
  expect_arrays_near("geom_size", a.geom_size, b.geom_size, 3 * a.ngeom);
  expect_arrays_near("geom_pos", a.geom_pos, b.geom_pos, 3 * a.ngeom);
  expect_arrays_near("geom_quat", a.geom_quat, b.geom_quat, 4 * a.ngeom);
  expect_arrays_near("geom_friction", a.geom_friction, b.geom_friction, 3 * a.ngeom);
  expect_arrays_near("geom_solref", a.geom_solref, b.geom_solref, mjNREF * a.ngeom);
  expect_arrays_near("geom_solimp", a.geom_solimp, b.geom_solimp, mjNIMP * a.ngeom);
  expect_arrays_near("geom_margin", a.geom_margin, b.geom_margin, a.ngeom);
  expect_ints_equal("geom_type", a.geom_type, b.geom_type, a.ngeom);
  expect_ints_equal("geom_contype", a.geom_contype, b.geom_contype, a.ngeom);
  expect_ints_equal("geom_conaffinity", a.geom_conaffinity, b.geom_conaffinity, a.ngeom);
  expect_ints_equal("geom_condim", a.geom_condim, b.geom_condim, a.ngeom);
  expect_ints_equal("jnt_type", a.jnt_type, b.jnt_type, a.njnt);
  expect_arrays_near("jnt_axis", a.jnt_axis, b.jnt_axis, 3 * a.njnt);
  expect_arrays_near("jnt_pos", a.jnt_pos, b.jnt_pos, 3 * a.njnt);
  expect_arrays_near("jnt_range", a.jnt_range, b.jnt_range, 2 * a.njnt);
  expect_arrays_near("jnt_stiffness", a.jnt_stiffness, b.jnt_stiffness, a.njnt);
  expect_arrays_near("jnt_solref", a.jnt_solref, b.jnt_solref, mjNREF * a.njnt);
  expect_arrays_near("jnt_solimp", a.jnt_solimp, b.jnt_solimp, mjNIMP * a.njnt);
  expect_arrays_near("dof_damping", a.dof_damping, b.dof_damping, a.nv);
  expect_arrays_near("dof_armature", a.dof_armature, b.dof_armature, a.nv);
  expect_ints_equal("actuator_trnid", a.actuator_trnid, b.actuator_trnid, 2 * a.nu);
  expect_arrays_near("actuator_gear", a.actuator_gear, b.actuator_gear, 6 * a.nu);
  expect_arrays_near("actuator_ctrlrange", a.actuator_ctrlrange, b.actuator_ctrlrange, 2 * a.nu);
  for (int u = 0; u < a.nu; ++u) EXPECT_EQ(a.actuator_ctrllimited[u], b.actuator_ctrllimited[u]);
  EXPECT_EQ(ours_->spec().dt, reference_->spec().dt);
}

// One env step from the same state and action in both models: >= 100 states, half of them
// random around the reset state, half reached by random rollouts (so feet touch the floor).
TEST_P(Parity, OneStepFromRandomStatesMatches) {
  const EnvSpec& spec = ours_->spec();
  const mjModel& model = ours_->model();
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal(0.0, 1.0);
  constexpr int kStates = 100;
  int terminated = 0;
  for (int trial = 0; trial < kStates; ++trial) {
    ours_->reset(static_cast<std::uint64_t>(trial));
    std::vector<double> qpos(ours_->qpos().begin(), ours_->qpos().end());
    std::vector<double> qvel(ours_->qvel().begin(), ours_->qvel().end());
    if (trial % 2 == 0) {
      for (int i = 0; i < model.nq; ++i) qpos[i] += 0.1 * normal(rng);
      for (int i = 0; i < model.nv; ++i) qvel[i] += 0.5 * normal(rng);
    } else {
      for (int t = 0; t < 5 + trial % 40; ++t) {
        const Step step = ours_->step(random_action(spec, rng));
        if (step.terminated || step.truncated) break;
        qpos.assign(ours_->qpos().begin(), ours_->qpos().end());
        qvel.assign(ours_->qvel().begin(), ours_->qvel().end());
      }
    }
    // A fresh reset clears the solver warm start in both before the state is set.
    ours_->reset(0);
    reference_->reset(0);
    ours_->set_state(qpos, qvel);
    reference_->set_state(qpos, qvel);
    const std::vector<double> action = random_action(spec, rng, /*overshoot=*/0.25);
    const Step a = ours_->step(action);
    const Step b = reference_->step(action);
    ASSERT_EQ(a.obs.size(), static_cast<std::size_t>(spec.obs_dim));
    ASSERT_EQ(b.obs.size(), a.obs.size());
    for (std::size_t i = 0; i < a.obs.size(); ++i)
      ASSERT_TRUE(close(a.obs[i], b.obs[i])) << "trial " << trial << " obs[" << i << "] " << a.obs[i] << " vs "
                                             << b.obs[i];
    ASSERT_TRUE(close(a.reward, b.reward)) << "trial " << trial << " reward " << a.reward << " vs " << b.reward;
    ASSERT_EQ(a.terminated, b.terminated) << "trial " << trial;
    terminated += a.terminated;
  }
  RecordProperty("terminated_states", terminated);
}

INSTANTIATE_TEST_SUITE_P(AllTasks, Parity, ::testing::ValuesIn(env_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace tom::envs
