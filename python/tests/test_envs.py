"""The tasks follow Gymnasium's API (the rules of gymnasium.utils.env_checker, checked here
without gymnasium; where it is installed, check_env itself runs)."""
import numpy as np
import pytest

import tomrl


def test_every_task_has_spaces_of_its_spec():
    for name in ["hopper", "walker2d", "halfcheetah", "ant", "humanoid", "inverted_pendulum", "swimmer"]:
        env = tomrl.make(name)
        obs, info = env.reset(seed=0)
        assert isinstance(info, dict)
        assert obs.shape == env.observation_space.shape and obs.dtype == np.float64
        assert env.action_space.dtype == np.float32
        assert np.all(env.action_space.low < env.action_space.high)
        assert env.observation_space.contains(obs)


def test_humanoid_bounds_are_the_tasks():
    env = tomrl.make("humanoid")
    assert env.action_space.shape == (17,)
    np.testing.assert_allclose(env.action_space.high, 0.4)
    np.testing.assert_allclose(env.action_space.low, -0.4)


def test_reset_with_a_seed_is_deterministic_and_steps_follow():
    env = tomrl.make("hopper")
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    other, _ = env.reset(seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, 3).astype(np.float32) for _ in range(20)]
    trace = [env.step(a) for a in actions]
    env.reset(seed=3)
    for a, (obs, reward, terminated, truncated, info) in zip(actions, trace):
        obs2, reward2, terminated2, truncated2, info2 = env.step(a)
        np.testing.assert_array_equal(obs, obs2)
        assert reward == reward2 and terminated == terminated2 and truncated == truncated2
        assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
        assert info == {}


def test_the_time_limit_ends_as_truncated_not_terminated():
    env = tomrl.make("inverted_pendulum", max_episode_steps=5)
    env.reset(seed=0)
    for step in range(5):
        _, _, terminated, truncated, _ = env.step(np.zeros(1))
    assert truncated and not terminated
    with pytest.raises(tomrl.Error, match="reset"):
        env.step(np.zeros(1))


def test_a_fall_ends_as_terminated():
    env = tomrl.make("inverted_pendulum")
    env.reset(seed=0)
    for _ in range(1000):
        _, _, terminated, truncated, _ = env.step(np.array([3.0]))
        if terminated or truncated:
            break
    assert terminated and not truncated


def test_state_round_trips_exactly():
    env = tomrl.make("walker2d")
    env.reset(seed=1)
    env.step(env.action_space.sample())
    state = env.save_state()
    a = np.full(6, 0.3)
    after = env.step(a)[0]
    env.load_state(state)
    np.testing.assert_array_equal(env.step(a)[0], after)
    with pytest.raises(tomrl.Error):
        tomrl.make("hopper").load_state(state)
    with pytest.raises(tomrl.Error):
        env.load_state(b"not a state")


def test_render_gives_frames_of_the_asked_size():
    env = tomrl.make("hopper", render_mode="rgb_array", width=64, height=48)
    with pytest.raises(tomrl.Error, match="before reset"):
        env.render()
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    assert frame.std() > 0  # a picture, not a blank
    env.step(np.ones(3))
    for _ in range(10):
        env.step(np.ones(3))
    assert not np.array_equal(env.render(), frame)
    with pytest.warns(UserWarning):
        assert tomrl.make("hopper").render() is None
    assert env.metadata["render_fps"] == 125
    vec = tomrl.make_vec("hopper", 2, render_mode="rgb_array", width=32, height=32)
    vec.reset(seed=0)
    frames = vec.render()
    assert len(frames) == 2 and frames[0].shape == (32, 32, 3) and frames[0].std() > 0


def test_close_ends_the_env():
    env = tomrl.make("hopper")
    env.close()
    with pytest.raises(ValueError, match="closed"):
        env.reset()


def test_make_vec_steps_copies_like_single_envs_and_autoresets_next_step():
    n = 3
    vec = tomrl.make_vec("inverted_pendulum", n, max_episode_steps=4)
    singles = [tomrl.make("inverted_pendulum", max_episode_steps=4) for _ in range(n)]
    obs, info = vec.reset(seed=10)
    assert obs.shape == (n, 4) and info == {}
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=10 + i)[0], obs[i])
    actions = np.linspace(-0.5, 0.5, n).reshape(n, 1)
    for _ in range(4):
        obs, rewards, terminated, truncated, _ = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, _ = env.step(actions[i])
            np.testing.assert_array_equal(obs[i], o)
            assert rewards[i] == r and terminated[i] == te and truncated[i] == tr
    assert truncated.all()
    obs, rewards, terminated, truncated, _ = vec.step(actions)  # the next-step autoreset
    assert not truncated.any() and not terminated.any() and (rewards == 0).all()
    assert vec.observation_space.shape == (n, 4) and vec.single_action_space.shape == (1,)


def test_vec_env_checks_actions_before_any_copy_moves():
    vec = tomrl.make_vec("hopper", 2)
    obs, _ = vec.reset(seed=0)
    bad = np.zeros((2, 3))
    bad[1, 2] = np.nan
    with pytest.raises(tomrl.Error, match="copy 1"):
        vec.step(bad)
    with pytest.raises(tomrl.Error, match="rows"):
        vec.step(np.zeros((3, 3)))
    obs2, *_ = vec.step(np.zeros((2, 3)))
    reference = tomrl.make_vec("hopper", 2)
    reference.reset(seed=0)
    np.testing.assert_array_equal(reference.step(np.zeros((2, 3)))[0], obs2)


def test_gymnasium_env_checker_where_installed():
    gymnasium = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env
    check_env(tomrl.make("hopper"), skip_render_check=True)
    assert isinstance(tomrl.make("hopper"), gymnasium.Env)
