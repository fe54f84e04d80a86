"""Bad input from Python is a Python exception carrying the command line's message."""
import math
import os

import numpy as np
import pytest

import tomrl


def test_unknown_names_are_key_errors_with_the_valid_names():
    with pytest.raises(KeyError) as caught:
        tomrl.make("hoper")
    assert isinstance(caught.value, tomrl.Error)
    assert str(caught.value).startswith("unknown environment 'hoper'; valid names:")
    with pytest.raises(tomrl.UnknownNameError, match="unknown setting 'sac.nope'"):
        tomrl.config("hopper", settings={"sac.nope": 1})
    with pytest.raises(tomrl.UnknownNameError, match="setting family"):
        tomrl.config("hopper", family="no-such-paper")
    with pytest.raises(KeyError):
        tomrl.config("hopper", settings={"nodot": 1})


def test_a_retired_setting_says_why_it_went():
    with pytest.raises(tomrl.Error, match=r"^settings: setting 'tom_dual.normalise' was removed \(.*mean 1"):
        tomrl.config("hopper", algo="mbpo", settings={"tom_dual.normalise": True})


def test_bad_values_are_value_errors():
    with pytest.raises(ValueError, match="run.steps"):
        tomrl.config("hopper", steps=0)
    with pytest.raises(ValueError, match="objective.name"):
        tomrl.config("hopper", algo="mbpo", objective="magic")
    with pytest.raises(ValueError, match="finite"):
        tomrl.config("hopper", settings={"sac.actor_lr": math.nan})
    with pytest.raises(ValueError, match="vagram needs a value function"):
        tomrl.config("inverted_pendulum", algo="pets", objective="vagram")
    with pytest.raises(TypeError, match="unknown argument"):
        tomrl.config("hopper", stepz=5)
    for seed in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            tomrl.make("hopper").reset(seed=seed)
    with pytest.raises(ValueError, match="render_mode"):
        tomrl.make("hopper", render_mode="human")
    with pytest.raises(ValueError, match="width"):
        tomrl.make("hopper", render_mode="rgb_array", width=15)
    with pytest.raises(ValueError, match="num_envs"):
        tomrl.make_vec("hopper", 0)
    with pytest.raises(ValueError, match="max_episode_steps"):
        tomrl.make("hopper", max_episode_steps=0)


def test_wrong_actions_are_refused_and_the_env_is_unchanged():
    env = tomrl.make("hopper")
    env.reset(seed=0)
    for action, pattern in [(np.zeros(2), r"shape \(2,\)"), (np.zeros((2, 3)), "rows"), (np.zeros((1, 1, 3)), "shape"),
                            (np.array([0.0, np.nan, 0.0]), "NaN|nan|finite"),
                            (np.array([0.0, np.inf, 0.0]), "inf|finite")]:
        with pytest.raises(ValueError, match=pattern):
            env.step(action)
    with pytest.raises(ValueError):
        env.step(["a", "b", "c"])
    fresh = tomrl.make("hopper")
    fresh.reset(seed=0)
    np.testing.assert_array_equal(env.step(np.zeros(3))[0], fresh.step(np.zeros(3))[0])


def test_bad_run_directories(tmp_path):
    with pytest.raises(FileNotFoundError):
        tomrl.load(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        tomrl.resume(tmp_path / "missing")
    with pytest.raises(tomrl.Error, match="no config.toml"):
        tomrl.load(tmp_path)
    (tmp_path / "config.toml").write_bytes(b"[run\nalgo = \xff")
    with pytest.raises(tomrl.Error, match="config.toml"):
        tomrl.load(tmp_path)
    (tmp_path / "config.toml").write_text('[run]\nalgo = "sac"\nenv = "hopper"\n')
    (tmp_path / "metrics.csv").write_text("step,eval_return_mean\n1000,5\n2000\n")
    with pytest.raises(tomrl.Error, match="metrics.csv:3"):
        tomrl.load(tmp_path).metrics
    (tmp_path / "metrics.csv").write_text("step,eval_return_mean\n1000,five\n")
    with pytest.raises(tomrl.Error, match="five"):
        tomrl.load(tmp_path).metrics
    with pytest.raises(tomrl.Error, match="checkpoint"):
        tomrl.load(tmp_path).policy
    with pytest.raises(FileNotFoundError):
        tomrl.train(env="hopper", config_file=tmp_path / "none.toml", out=str(tmp_path / "r"))
    with pytest.raises(FileExistsError):
        tomrl.train(env="hopper", steps=10, out=str(tmp_path))
    assert os.path.isfile(tmp_path / "metrics.csv")  # nothing of the existing directory was touched
