"""A task written in numpy for the tests of Python environments: a point on a line steered
towards 0. x' = x + 0.2 a, reward -x'^2, the episode ends (terminated) when |x'| > 2 and is
cut at 50 steps; starts are uniform in [-1.5, 1.5]."""
import numpy as np

try:
    from gymnasium.spaces import Box
except ImportError:
    from tomrl import Box


class PointEnv:
    metadata = {"render_fps": 20}

    def __init__(self):
        self.observation_space = Box(-np.inf, np.inf, shape=(1,), dtype=np.float64)
        self.action_space = Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.rng = np.random.default_rng()
        self.x = 0.0
        self.t = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.x, self.t = float(self.rng.uniform(-1.5, 1.5)), 0
        return np.array([self.x]), {}

    def step(self, action):
        assert action.dtype == np.float32
        self.x += 0.2 * float(np.clip(action[0], -1, 1))
        self.t += 1
        terminated = abs(self.x) > 2
        return np.array([self.x]), -self.x ** 2, terminated, self.t >= 50, {}


def point_termination(obs, action, next_obs):
    return np.abs(next_obs[:, 0]) > 2
