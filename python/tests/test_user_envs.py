"""Your own Python environment, trained by tom-rl's C++ loop: SAC, MBPO with TOM, and PETS
with a termination rule written in Python."""
import numpy as np
import pytest

import tomrl
from point_env import PointEnv, point_termination

QUICK_SAC = {"sac.hidden_size": 32, "sac_loop.random_steps": 300, "sac_loop.update_after": 300}


@pytest.fixture(autouse=True)
def point():
    tomrl.register_env("point", PointEnv, termination=point_termination, max_episode_steps=50)
    yield
    tomrl.unregister_env("point")


def random_return(episodes=20):
    env, rng, total = PointEnv(), np.random.default_rng(0), 0.0
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
            total += reward
            done = terminated or truncated
    return total / episodes


def test_a_registered_env_steps_through_tom_rl_as_it_does_alone():
    assert "point" in tomrl.env_names()
    through, alone = tomrl.make("point"), PointEnv()
    a, _ = through.reset(seed=4)
    b, _ = alone.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    for u in np.linspace(-1, 1, 12):
        out = through.step(np.array([u]))
        ref = alone.step(np.array([u], dtype=np.float32))
        np.testing.assert_array_equal(out[0], ref[0])
        assert out[1:4] == ref[1:4]
    assert through.action_space.shape == (1,)


def test_bad_registrations_and_bad_envs_are_refused():
    with pytest.raises(tomrl.Error, match="built-in"):
        tomrl.register_env("hopper", PointEnv)
    with pytest.raises(tomrl.Error, match="letters"):
        tomrl.register_env("my env", PointEnv)
    with pytest.raises(tomrl.Error, match="callable"):
        tomrl.register_env("x", 5)

    class Flat(PointEnv):
        def __init__(self):
            super().__init__()
            self.action_space = Box2D()

    class Box2D:
        shape = (2, 2)

    with pytest.raises(tomrl.Error, match="1-D Box"):
        tomrl.register_env("flat", Flat)

    class NanEnv(PointEnv):
        def step(self, action):
            obs, *rest = super().step(action)
            return np.array([np.nan]), *rest

    class Raises(PointEnv):
        def step(self, action):
            raise RuntimeError("the robot is on fire")

    for name, env_class, message in [("nan_env", NanEnv, "nan_env.*observation entry 0 is nan"),
                                     ("raises", Raises, "on fire")]:
        tomrl.register_env(name, env_class)
        env = tomrl.make(name)
        env.reset(seed=0)
        with pytest.raises(tomrl.Error, match=message):
            env.step(np.zeros(1))
        tomrl.unregister_env(name)


def test_sac_learns_a_python_env(tmp_path):
    run = tomrl.train(env="point", algo="sac", steps=2000, seed=0, threads=1, eval_every=500, eval_episodes=5,
                      checkpoint_every=500, settings=QUICK_SAC, out=str(tmp_path / "sac"))
    final = float(np.asarray(run.metrics["eval_return_mean"])[-1])
    assert final > 0.5 * random_return(), (final, random_return())  # returns are negative: closer to 0 is better


def test_a_python_env_run_resumes_exactly(tmp_path):
    common = dict(env="point", algo="sac", seed=1, threads=1, eval_every=250, eval_episodes=2, checkpoint_every=250,
                  settings=QUICK_SAC)
    whole = tomrl.train(steps=750, out=str(tmp_path / "whole"), **common)
    part = tomrl.train(steps=500, out=str(tmp_path / "part"), **common)
    resumed = tomrl.resume(part.dir, steps=750)
    for column in ["step", "eval_return_mean", "q_loss"]:
        np.testing.assert_array_equal(np.asarray(whole.metrics[column]), np.asarray(resumed.metrics[column]))


def test_mbpo_with_tom_and_pets_run_on_a_python_env(tmp_path):
    mbpo = tomrl.train(env="point", algo="mbpo", objective="tom", steps=1500, seed=0, threads=1, eval_every=500,
                       eval_episodes=3, checkpoint_every=500, out=str(tmp_path / "mbpo"),
                       settings={**QUICK_SAC, "mbpo.random_steps": 300, "mbpo.rollout_batch_size": 500,
                                 "ensemble.hidden_units": 32, "ensemble.max_epochs": 200, "tom_dual.steps": 40,
                                 "tom_dual.hidden": 32, "discriminator.passes": 2, "tom.recent_pool": 200})
    metrics = mbpo.metrics
    assert np.isfinite(np.asarray(metrics["tom_dual_loss"])).all()
    assert float(np.asarray(metrics["eval_return_mean"])[-1]) > 0.5 * random_return()
    # The model learned x' = x + 0.2 a and r = -x'^2 where the data is: the reward's shape
    # (a constant or a line would not correlate so) and its level within 0.3 (its range over
    # the data is 0 to -4: episodes end past |x'| = 2).
    x, a = np.linspace(-1, 1, 9).reshape(-1, 1), np.linspace(1, -1, 9).reshape(-1, 1)
    prediction = mbpo.model.predict(x, a)
    np.testing.assert_allclose(prediction["next_obs_mean"], x + 0.2 * a, atol=0.05)
    true_reward = -((x + 0.2 * a) ** 2).ravel()
    assert np.corrcoef(prediction["reward_mean"], true_reward)[0, 1] > 0.9
    np.testing.assert_allclose(prediction["reward_mean"], true_reward, atol=0.3)

    pets = tomrl.train(env="point", algo="pets", steps=300, seed=0, threads=1, eval_every=150, eval_episodes=2,
                       checkpoint_every=150, out=str(tmp_path / "pets"),
                       settings={"cem.horizon": 8, "cem.population": 50, "cem.elites": 5, "cem.iterations": 2,
                                 "cem.particles": 5, "ensemble.hidden_units": 32, "pets.random_steps": 100})
    assert float(np.asarray(pets.metrics["eval_return_mean"])[-1]) > 0.5 * random_return()
