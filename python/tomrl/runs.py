"""Runs from Python: train, resume and load, with the command line's settings, checks and
messages (the same C++ code reads them). A run is a directory: config.toml, metrics.csv,
weights.csv (model-based runs) and checkpoint.pt."""
import csv
import math
import os
import tomllib

import numpy as np

from . import _tomrl

try:
    import pandas as _pandas
except ImportError:  # pandas is optional: tables are then dicts of numpy arrays
    _pandas = None

try:
    import torch as _torch
except ImportError:  # torch is optional: arrays are then numpy only
    _torch = None

# The command line's flags, as the settings they set.
_FLAG_SETTINGS = {"algo": "run.algo", "objective": "objective.name", "steps": "run.steps", "seed": "run.seed",
                  "threads": "run.threads", "device": "run.device", "eval_every": "run.eval_every",
                  "eval_episodes": "run.eval_episodes", "checkpoint_every": "run.checkpoint_every"}


def _setting_text(key, value):
    if not isinstance(key, str) or "." not in key:
        raise _tomrl.UnknownNameError(f"setting names are 'section.name' strings (got {key!r})")
    if isinstance(value, (bool, np.bool_)):
        return f"{key}={'true' if value else 'false'}"
    if isinstance(value, (int, np.integer)):
        return f"{key}={int(value)}"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise _tomrl.Error(f"{key}: {value} is not a finite number")
        return f"{key}={float(value)!r}"
    if isinstance(value, str):
        return f"{key}={value}"
    raise _tomrl.Error(f"{key}: a setting is a bool, number or string (got {type(value).__name__})")


def _sources(env, family, config_file, settings, flags):
    if not isinstance(env, str):
        raise _tomrl.Error(f"env must be a task name (got {env!r})")
    if config_file is not None and not os.path.isfile(config_file):
        raise FileNotFoundError(f"config file {config_file} does not exist")
    if settings is not None and not isinstance(settings, dict):
        raise _tomrl.Error(f"settings must be a dict of 'section.name': value (got {type(settings).__name__})")
    overrides = [_setting_text(key, value) for key, value in (settings or {}).items()]
    overrides += [_setting_text(_FLAG_SETTINGS[flag], value) for flag, value in flags.items() if value is not None]
    return env, family or "", os.fspath(config_file) if config_file else "", overrides


def config(env="hopper", *, family=None, config_file=None, settings=None, **flags):
    """The fully resolved settings of a run that train() would start, as a dict (as
    `tom config` prints them)."""
    _check_flags(flags)
    text, _, _ = _tomrl.resolve_config(*_sources(env, family, config_file, settings, flags))
    return tomllib.loads(text)


def _check_flags(flags):
    unknown = sorted(set(flags) - set(_FLAG_SETTINGS))
    if unknown:
        raise TypeError(f"unknown argument(s) {', '.join(unknown)}; valid: {', '.join(sorted(_FLAG_SETTINGS))}, "
                        "family, config_file, settings, out")


def train(env="hopper", *, family=None, config_file=None, settings=None, out=None, **flags):
    """Trains as `tom train` does and returns the finished Run. Flags: algo (sac, mbpo,
    pets), objective (mle, tom, pmac, vagram), steps, seed, threads, device, eval_every,
    eval_episodes, checkpoint_every; settings: {"section.name": value} for any other
    setting. Ctrl-C stops the run after a checkpoint (resume it with tomrl.resume) and
    raises KeyboardInterrupt."""
    _check_flags(flags)
    if out is not None and os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise FileExistsError(f"{out} exists and is not an empty directory: a run never overwrites another")
    dir, completed = _tomrl.train(*_sources(env, family, config_file, settings, flags), os.fspath(out or ""))
    if not completed:
        raise KeyboardInterrupt(f"run stopped with a checkpoint; continue it with tomrl.resume({dir!r})")
    return Run(dir)


def resume(dir, steps=None):
    """Continues the run in `dir` from its checkpoint (steps: a larger budget) and returns it."""
    _check_run_dir(dir)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))):
        raise _tomrl.Error(f"steps must be an integer (got {steps!r})")
    if not _tomrl.resume(os.fspath(dir), None if steps is None else int(steps)):
        raise KeyboardInterrupt(f"run stopped with a checkpoint; continue it with tomrl.resume({dir!r})")
    return Run(dir)


def load(dir):
    """The run in `dir`: its settings, metrics, weight log, policy and model."""
    return Run(dir)


def _check_run_dir(dir):
    dir = os.fspath(dir)
    if not os.path.isdir(dir):
        raise FileNotFoundError(f"run directory {dir} does not exist")
    if not os.path.isfile(os.path.join(dir, "config.toml")):
        raise _tomrl.Error(f"{dir} is not a run directory: it has no config.toml")
    return dir


def _read_table(path):
    """A CSV of numbers as a pandas DataFrame (or, without pandas, a dict of numpy arrays)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise _tomrl.Error(f"{path}: not a text table ({e.reason})") from None
    if not rows:
        raise _tomrl.Error(f"{path} is empty: it has no header")
    header, body = rows[0], rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise _tomrl.Error(f"{path}:{number}: {len(row)} fields, the header names {len(header)}")
    try:
        columns = {name: np.array([float(row[i]) if row[i] != "" else np.nan for row in body], dtype=np.float64)
                   for i, name in enumerate(header)}
    except ValueError as e:
        raise _tomrl.Error(f"{path}: {e}") from None
    return _pandas.DataFrame(columns) if _pandas is not None else columns


def _as_rows(x):
    """(numpy float64 array, whether x was a torch tensor)."""
    if _torch is not None and isinstance(x, _torch.Tensor):
        return x.detach().cpu().to(_torch.float64).numpy(), True
    return np.asarray(x, dtype=np.float64), False


def _answer(array, as_torch):
    return _torch.from_numpy(array) if as_torch else array


class Policy:
    """A run's policy: act(obs) for one observation (obs_dim,) or a batch (n, obs_dim),
    as numpy, or as torch where a torch tensor is given."""

    def __init__(self, dir):
        self._policy = _tomrl.Policy(dir)
        self.obs_dim, self.action_dim = self._policy.obs_dim, self._policy.action_dim

    def act(self, obs, deterministic=True):
        rows, as_torch = _as_rows(obs)
        return _answer(self._policy.act(rows, bool(deterministic)), as_torch)

    __call__ = act


class Model:
    """A model-based run's dynamics model: predict(obs, action) gives the predicted mean and
    variance of the next observation and the reward, per row."""

    def __init__(self, dir=None, *, _model=None):
        self._model = _model if _model is not None else _tomrl.Model(os.fspath(dir))
        self.step, self.kind = self._model.step, self._model.kind

    def predict(self, obs, action):
        """{'next_obs_mean', 'next_obs_var', 'reward_mean', 'reward_var'} for obs (n, obs_dim)
        and action (n, action_dim), or one row of each."""
        obs_rows, as_torch = _as_rows(obs)
        action_rows, _ = _as_rows(action)
        out = self._model.predict(obs_rows, action_rows)
        return {key: _answer(value, as_torch) if isinstance(value, np.ndarray) else value
                for key, value in out.items()}


class Run:
    """A run directory. Tables and policy are read when first asked for."""

    def __init__(self, dir):
        self.dir = _check_run_dir(dir)
        path = os.path.join(self.dir, "config.toml")
        try:
            with open(path, "rb") as f:
                self.config = tomllib.load(f)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise _tomrl.Error(f"{path}: {e}") from None
        self._policy = self._model = None

    @property
    def metrics(self):
        """One row per evaluation (metrics.csv)."""
        path = os.path.join(self.dir, "metrics.csv")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} does not exist: the run has not reached its first evaluation")
        return _read_table(path)

    @property
    def weights(self):
        """The weight-vs-age log (weights.csv): per fit, the mean weight of each age bin, oldest
        first; None for a run without a model."""
        path = os.path.join(self.dir, "weights.csv")
        return _read_table(path) if os.path.isfile(path) else None

    @property
    def policy(self):
        if self._policy is None:
            self._policy = Policy(self.dir)
        return self._policy

    @property
    def model(self):
        if self._model is None:
            self._model = Model(self.dir)
        return self._model

    def evaluate(self, episodes=10):
        """Mean return, its standard deviation and the mean length over `episodes` episodes of
        the deterministic policy (as `tom eval`)."""
        if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)):
            raise _tomrl.Error(f"episodes must be an integer (got {episodes!r})")
        mean, std, length = _tomrl.evaluate(self.dir, int(episodes))
        return {"return_mean": mean, "return_std": std, "length_mean": length}

    def __repr__(self):
        run = self.config.get("run", {})
        return f"tomrl.Run({self.dir!r}: {run.get('algo')} on {run.get('env')}, seed {run.get('seed')})"
