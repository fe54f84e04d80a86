"""Your own environment, written in numpy with Gymnasium's API, trained by tom-rl's C++
loop: SAC, then MBPO with TOM (whose model rollouts ask your termination rule).

    /usr/bin/python3 examples/python/own_env.py [--steps N]
"""
import argparse
import tempfile

import numpy as np

import tomrl


class Cart:
    """A cart on a rail pushed towards 0: x' = x + 0.05 v, v' = 0.9 v + 0.5 a; reward -x^2;
    the episode ends when the cart leaves [-3, 3] and is cut at 100 steps."""
    metadata = {"render_fps": 20}

    def __init__(self):
        self.observation_space = tomrl.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64)
        self.action_space = tomrl.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.rng = np.random.default_rng()
        self.state, self.t = np.zeros(2), 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state, self.t = np.array([self.rng.uniform(-2, 2), 0.0]), 0
        return self.state.copy(), {}

    def step(self, action):
        x, v = self.state
        v = 0.9 * v + 0.5 * float(np.clip(action[0], -1, 1))
        x = x + 0.05 * v
        self.state, self.t = np.array([x, v]), self.t + 1
        return self.state.copy(), -x * x, abs(x) > 3, self.t >= 100, {}


def leaves_the_rail(obs, action, next_obs):
    return np.abs(next_obs[:, 0]) > 3


parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3000)
args = parser.parse_args()
tomrl.register_env("cart", Cart, termination=leaves_the_rail, max_episode_steps=100)
out = tempfile.mkdtemp(prefix="tomrl_cart_")
for algo, objective in (("sac", None), ("mbpo", "tom")):
    run = tomrl.train(env="cart", algo=algo, objective=objective, steps=args.steps, seed=0,
                      eval_every=max(args.steps // 3, 1), eval_episodes=3, out=f"{out}/{algo}",
                      settings={"sac_loop.random_steps": 500, "sac_loop.update_after": 500, "mbpo.random_steps": 500,
                                "mbpo.rollout_batch_size": 1000, "mbpo.updates_per_step": 5, "sac.hidden_size": 64,
                                "ensemble.hidden_units": 64, "ensemble.max_epochs": 50})
    print(algo, "evaluation returns:", np.round(np.asarray(run.metrics["eval_return_mean"]), 1))
