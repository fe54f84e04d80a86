"""Your own environment, trained by tom-rl: register a maker of a Gymnasium-style env (with
1-D Box observation and action spaces) under a name, then train on that name. The run's
loop is C++; it calls into Python only for the env's reset and step (and, in MBPO and PETS
model rollouts, the termination rule)."""
import atexit
import pickle

import numpy as np

from . import _tomrl


def _box(space, what, name):
    shape = getattr(space, "shape", None)
    if shape is None or len(shape) != 1 or shape[0] < 1:
        raise _tomrl.Error(f"environment '{name}': its {what} must be a 1-D Box (got {space!r})")
    return int(shape[0])


def _spec(env, name, max_episode_steps):
    obs_dim = _box(env.observation_space, "observation_space", name)
    action_dim = _box(env.action_space, "action_space", name)
    low = np.asarray(env.action_space.low, dtype=np.float64).reshape(-1)
    high = np.asarray(env.action_space.high, dtype=np.float64).reshape(-1)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (low < high).all()):
        raise _tomrl.Error(f"environment '{name}': action bounds must be finite with low < high")
    fps = getattr(env, "metadata", {}).get("render_fps") or 0
    return {"obs_dim": obs_dim, "action_dim": action_dim, "action_low": low.tolist(), "action_high": high.tolist(),
            "dt": 1.0 / fps if fps else 0.0, "max_episode_steps": max_episode_steps}


class _Adapter:
    """What the C++ loop calls: float64 observations in and out, the action in the env's
    own dtype, the Gymnasium 5-tuple cut to 4, the env pickled for checkpoints."""

    def __init__(self, env):
        self.env = env
        self.action_dtype = getattr(env.action_space, "dtype", np.float32)

    def reset(self, seed):
        obs, _ = self.env.reset(seed=seed)
        return np.asarray(obs, dtype=np.float64).reshape(-1)

    def step(self, action):
        obs, reward, terminated, truncated, _ = self.env.step(action.astype(self.action_dtype))
        return np.asarray(obs, dtype=np.float64).reshape(-1), float(reward), bool(terminated), bool(truncated)

    def save_state(self):
        try:
            return pickle.dumps(self.env)
        except Exception as e:
            raise TypeError(f"a checkpoint pickles the env, and {type(self.env).__name__} cannot be pickled: {e}") from None

    def load_state(self, data):
        self.env = pickle.loads(data)


def register_env(name, make, *, termination=None, max_episode_steps=None):
    """Registers `make` (a callable returning a new env) under `name` for tomrl.train and
    tomrl.make. termination(obs, action, next_obs) -> bool array, one flag per row of
    float64 arrays, is the task's end rule for model rollouts (MBPO, PETS); without it the
    task never ends there. max_episode_steps: the time limit (default: 1000 in runs).
    Register again in a new process before resuming or loading a run on it."""
    if not callable(make):
        raise _tomrl.Error(f"environment '{name}': make must be a callable returning an env")
    if termination is not None and not callable(termination):
        raise _tomrl.Error(f"environment '{name}': termination must be a callable or None")
    if max_episode_steps is not None and (isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int)
                                          or max_episode_steps < 1):
        raise _tomrl.Error(f"environment '{name}': max_episode_steps must be a positive integer")
    _spec(make(), name, max_episode_steps)  # a maker that cannot make is refused now, not mid-run

    def make_adapter():
        env = make()
        return _Adapter(env), _spec(env, name, max_episode_steps)

    _tomrl.register_env(name, make_adapter, termination)
    _registered.add(name)


def unregister_env(name):
    """Removes a registered environment; returns whether it was registered."""
    _registered.discard(name)
    return _tomrl.unregister_env(name)


# The registrations hold Python objects: they are dropped while Python still runs.
_registered = set()
atexit.register(lambda: [unregister_env(name) for name in list(_registered)])
