"""TOM on your own transitions and policy: which transitions look like the current
policy's, and a model fitted with those weights.

    /usr/bin/python3 examples/python/own_data.py
"""
import numpy as np

import tomrl

rng = np.random.default_rng(0)


def policy(states):
    """The current policy, for a batch of states: push the first coordinate towards 0."""
    return np.clip(-states[:, :1] + 0.1 * rng.normal(size=(len(states), 1)), -1, 1)


# Old data from random actions, then the newest episode from the current policy.
obs, action, reward, next_obs = [], [], [], []
for episode in range(4):
    s = rng.normal(size=3)
    for t in range(60):
        a = rng.uniform(-1, 1, 1) if episode < 3 else policy(s[None])[0]
        s_next = 0.9 * s + 0.2 * a
        obs.append(s), action.append(a), reward.append(-s @ s), next_obs.append(s_next)
        s = s_next
starts = np.zeros(240, dtype=bool)
starts[::60] = True

fitted = tomrl.fit_model(np.array(obs), np.array(action), np.array(reward), np.array(next_obs),
                         policy=policy, episode_start=starts, objective="tom",
                         settings={"tom.recent_pool": 60, "tom_dual.steps": 300, "ensemble.max_epochs": 30})
w = fitted.fit_weights
print(f"mean TOM weight: random-action episodes {w[:180].mean():.2f}, current policy's episode {w[180:].mean():.2f}")
print("fit:", {k: round(v, 3) for k, v in fitted.fit.items()})
print("prediction for the last transition:", fitted.model.predict(obs[-1], action[-1])["next_obs_mean"],
      "observed:", next_obs[-1])
print("TOM's ratio estimator on a finite MDP:", tomrl.verify_weights(states=5, actions=2, forms=["conjugate-exact"]))
