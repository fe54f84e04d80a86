"""tom-rl from Python: a task as a Gymnasium environment, a short MBPO + TOM run, and what
the run holds (metrics, TOM's weight log, policy, model).

    /usr/bin/python3 examples/python/quickstart.py [--steps N] [--out DIR]
"""
import argparse
import tempfile

import numpy as np

import tomrl

# 1. A task, Gymnasium-shaped.
env = tomrl.make("inverted_pendulum")
obs, info = env.reset(seed=0)
print(env.observation_space, env.action_space)
obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

# 2. Train MBPO with TOM's model learning (the same settings and messages as `tom train`).
parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=3000)
parser.add_argument("--out", default=tempfile.mkdtemp(prefix="tomrl_") + "/mbpo_tom")
args = parser.parse_args()
run = tomrl.train(env="inverted_pendulum", algo="mbpo", objective="tom", family="mbpo-paper", steps=args.steps,
                  seed=0, eval_every=max(args.steps // 6, 1), eval_episodes=2, out=args.out,
                  settings={"mbpo.rollout_batch_size": 1000, "ensemble.max_epochs": 20, "sac.hidden_size": 64,
                            "ensemble.hidden_units": 64})

# 3. What the run holds.
print(run.metrics[["step", "eval_return_mean", "model_holdout_nll", "weight_ess"]])
weights = run.weights  # one row per fit: the mean TOM weight of each age bin, oldest first
bins = [c for c in weights.keys() if c.startswith("bin_")]
print("last fit: oldest bin weight", float(np.asarray(weights[bins[0]])[-1]),
      "newest", float(np.asarray(weights[bins[-1]])[-1]))
obs, _ = env.reset(seed=1)
action = run.policy.act(obs)
prediction = run.model.predict(obs, action)
print("action", action, "predicted next obs", prediction["next_obs_mean"], "reward", prediction["reward_mean"])
print("evaluation:", run.evaluate(episodes=5))
