"""tom-rl's tasks in Gymnasium's shape: reset(seed=, options=) -> (obs, info),
step(action) -> (obs, reward, terminated, truncated, info), observation_space and
action_space, render() frames, close(); make_vec steps n copies in C++."""
import warnings

import numpy as np

from . import _tomrl
from .spaces import Box

try:
    import gymnasium as _gymnasium
    _EnvBase = _gymnasium.Env
    _VectorBase = _gymnasium.vector.VectorEnv
except ImportError:  # gymnasium is optional
    _EnvBase = object
    _VectorBase = object


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None (got {seed!r})")
    return int(seed)


def _check_options(options, name):
    if options:
        raise ValueError(f"{name} takes no reset options (got {sorted(options)})")


def _check_render_mode(render_mode, width, height):
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array' (got {render_mode!r})")
    for what, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or not 16 <= value <= 4096 or value % 2:
            raise ValueError(f"{what} must be an even integer in 16..4096 (got {value!r})")


def _frames(env, draw):
    """Gymnasium's render(): nothing (and a warning) without a render mode; before the
    first reset there is no state to draw."""
    if env.render_mode is None:
        warnings.warn("render() without a render_mode: make the env with render_mode='rgb_array'")
        return None
    if not env._started:
        raise _tomrl.Error("render() before reset(): reset the environment first")
    return draw(env._live())


def _spaces(spec):
    observation = Box(-np.inf, np.inf, shape=(spec["obs_dim"],), dtype=np.float64)
    action = Box(np.asarray(spec["action_low"], dtype=np.float32), np.asarray(spec["action_high"], dtype=np.float32),
                 dtype=np.float32)
    return observation, action


class _Driven:
    """What Env and VecEnv share: the C++ object they drive, and reset/step in Gymnasium's
    tuples (empty info dicts)."""

    def _live(self):
        if self._env is None:
            raise ValueError(f"{self!r} was closed")
        return self._env

    def _reset(self, seed, options):
        _check_options(options, self.task["name"])
        obs = self._live().reset(seed)
        self._started = True
        return obs, {}

    def step(self, action):
        obs, reward, terminated, truncated = self._live().step(np.asarray(action, dtype=np.float64))
        return obs, reward, terminated, truncated, {}


class Env(_Driven, _EnvBase):
    """One tom-rl task. Observations are float64, actions float32 in [low, high] (other
    float arrays of the right shape are taken too); a time-limit end is `truncated`."""

    def __init__(self, name, max_episode_steps=1000, render_mode=None, width=480, height=480):
        _check_render_mode(render_mode, width, height)
        self._env = _tomrl.Env(name, max_episode_steps)
        self.task = self._env.spec()
        self.observation_space, self.action_space = _spaces(self.task)
        self.render_mode = render_mode
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1.0 / self.task["dt"]))}
        self.spec = None  # not registered with gymnasium.make
        self._size = (int(width), int(height))
        self._started = False

    @property
    def name(self):
        return self.task["name"]

    def reset(self, *, seed=None, options=None):
        seed = _check_seed(seed)
        if _EnvBase is not object:
            _EnvBase.reset(self, seed=seed)  # seeds self.np_random as Gymnasium does
        return self._reset(seed, options)

    def render(self):
        return _frames(self, lambda env: env.render(*self._size))

    def close(self):
        self._env = None

    def save_state(self):
        """Everything that decides the episode's future, as bytes (restore with load_state)."""
        return self._live().save_state()

    def load_state(self, state):
        self._live().load_state(bytes(state))

    def __repr__(self):
        return f"tomrl.Env({self.task['name']!r})"


class VecEnv(_Driven, _VectorBase):
    """n copies of one task stepped together in C++, Gymnasium 1.0's vector form with its
    next-step autoreset: the step after a copy's episode ended resets that copy (its action
    is ignored, its reward 0, its flags False)."""

    def __init__(self, name, num_envs, max_episode_steps=1000, render_mode=None, width=480, height=480):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer (got {num_envs!r})")
        _check_render_mode(render_mode, width, height)
        self._env = _tomrl.VecEnv(name, int(num_envs), max_episode_steps)
        self.task = self._env.spec()
        self.num_envs = int(num_envs)
        self.single_observation_space, self.single_action_space = _spaces(self.task)
        n = self.num_envs
        self.observation_space = Box(-np.inf, np.inf, shape=(n, self.task["obs_dim"]), dtype=np.float64)
        self.action_space = Box(np.tile(self.single_action_space.low, (n, 1)),
                                np.tile(self.single_action_space.high, (n, 1)), dtype=np.float32)
        self.render_mode = render_mode
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": int(round(1.0 / self.task["dt"])),
                         "autoreset_mode": "next_step"}
        self.spec = None
        self._size = (int(width), int(height))
        self._started = False

    def reset(self, *, seed=None, options=None):
        """Resets every copy; copy i gets seed + i."""
        return self._reset(_check_seed(seed), options)

    def render(self):
        """One frame per copy."""
        return _frames(self, lambda env: tuple(env.render(i, *self._size) for i in range(self.num_envs)))

    def close(self, **kwargs):
        self._env = None

    def __repr__(self):
        return f"tomrl.VecEnv({self.task['name']!r}, {self.num_envs})"


def make(name, *, max_episode_steps=1000, render_mode=None, width=480, height=480):
    """A tom-rl task (tomrl.env_names() lists them) as a Gymnasium environment."""
    return Env(name, max_episode_steps=max_episode_steps, render_mode=render_mode, width=width, height=height)


def make_vec(name, num_envs, *, max_episode_steps=1000, render_mode=None, width=480, height=480):
    """num_envs copies of a task, stepped together in C++."""
    return VecEnv(name, num_envs, max_episode_steps=max_episode_steps, render_mode=render_mode, width=width,
                  height=height)
