"""TOM (or MLE, PMAC) on your own transitions: the model-learning stage that MBPO and PETS
drive, called on arrays, with your policy as a Python callable or a torch module. And the
finite-MDP check of TOM's ratio estimator (`tom verify-weights`)."""
from dataclasses import dataclass

import numpy as np

from . import _tomrl
from .runs import Model, _setting_text

try:
    import torch as _torch
except ImportError:  # torch is optional
    _torch = None


@dataclass
class FitResult:
    """What one fit gives back. Weights have one entry per transition (mean 1): how much it
    counted in the model fit, and how likely its state starts a model rollout."""
    fit_weights: np.ndarray
    start_weights: np.ndarray
    weight_age_bins: np.ndarray  # mean fit weight in 100 bins from oldest to newest row
    fit: dict                    # the fit's figures (NLL, MSE, epochs, weight ESS, ...)
    diagnostics: dict            # the objective's own figures (tom_dual_loss, ...)
    model: Model


def _policy_callable(policy):
    """A callable float64 states [B, O] -> actions [B, A] as numpy."""
    if policy is None:
        return None
    if _torch is not None and isinstance(policy, _torch.nn.Module):
        module = policy
        dtype = next(module.parameters(), _torch.zeros(())).dtype
        device = next(module.parameters(), _torch.zeros(())).device

        def act(states):
            with _torch.no_grad():
                out = module(_torch.from_numpy(states).to(device=device, dtype=dtype))
            if not isinstance(out, _torch.Tensor):
                raise TypeError(f"the policy module returned {type(out).__name__}, not a tensor of actions")
            return out.detach().cpu().double().numpy()
        return act
    if not callable(policy):
        raise _tomrl.Error(f"policy must be a callable or a torch module (got {type(policy).__name__})")

    def act(states):
        out = policy(states)
        if _torch is not None and isinstance(out, _torch.Tensor):
            out = out.detach().cpu().double().numpy()
        return np.asarray(out, dtype=np.float64)
    return act


# The sections a fit reads; a setting of any other section would have no effect.
_FIT_SECTIONS = ("objective", "tom", "tom_dual", "discriminator", "pmac", "vagram", "ensemble", "mdn")
_FIT_KEYS = ("mbpo.model", "run.threads")


def _check_fit_setting(key):
    if isinstance(key, str) and (key.split(".")[0] in _FIT_SECTIONS or key in _FIT_KEYS):
        return
    raise _tomrl.UnknownNameError(f"fit_model: setting {key!r} has no effect on a fit; it reads the sections "
                                  f"{', '.join(_FIT_SECTIONS)} and {', '.join(_FIT_KEYS)}")


def _flags(values, n, name, default):
    if values is None:
        return default
    flags = np.asarray(values)
    if flags.shape != (n,):
        raise _tomrl.Error(f"{name} must have one entry per transition ({n}); got shape {flags.shape}")
    return [bool(v) for v in flags]


def fit_model(obs, action, reward, next_obs, terminated=None, *, policy=None, episode_start=None, objective="tom",
              settings=None, seed=0, exploration_steps=0):
    """Fits a dynamics model to transitions (s, a, r, s', terminated), rows in the order they
    were collected (TOM takes the newest `tom.recent_pool` rows as the current policy's),
    with `objective`'s weights: mle, tom (needs `policy`: a ~ pi(.|s) for a batch of states)
    or pmac. settings: {"section.name": value} for the objective's and the model's
    sections (tom, tom_dual, discriminator, ensemble, mdn, mbpo.model). episode_start marks
    rows whose obs begins an episode (default: the first row and each row after a
    terminated one): TOM's initial-state term samples them."""
    obs = np.asarray(obs, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    next_obs = np.asarray(next_obs, dtype=np.float64)
    reward = np.asarray(reward, dtype=np.float64).reshape(-1) if np.ndim(reward) == 2 and np.shape(reward)[1] == 1 \
        else np.asarray(reward, dtype=np.float64)
    n = obs.shape[0] if obs.ndim == 2 else -1
    if n < 0:
        raise _tomrl.Error(f"obs must be a 2-D array (rows, obs_dim); got shape {obs.shape}")
    done = _flags(terminated, n, "terminated", [False] * n)
    starts = _flags(episode_start, n, "episode_start", [i == 0 or done[i - 1] for i in range(n)])
    if not isinstance(objective, str):
        raise _tomrl.Error(f"objective must be a name (mle, tom, pmac); got {objective!r}")
    overrides = [_setting_text("objective.name", objective)]
    for key in settings or {}:
        _check_fit_setting(key)
    overrides += [_setting_text(key, value) for key, value in (settings or {}).items()]
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _tomrl.Error(f"seed must be a non-negative integer (got {seed!r})")
    out = _tomrl.fit_model(obs, action, reward, next_obs, done, starts, _policy_callable(policy), overrides,
                           int(seed), int(exploration_steps))
    return FitResult(out["fit_weights"], out["start_weights"], out["weight_age_bins"], out["fit"], out["objective"],
                     Model(_model=out["model"]))


def verify_weights(states=20, actions=3, *, stochastic=False, seed=0, forms=None, steps=None):
    """Runs TOM's dual on a random finite MDP (one-hot states and actions) and compares its
    ratio with the exact d^pi/d^R, for each form of the dual (default: all); returns one
    dict of errors per form, as `tom verify-weights` prints them."""
    for name, value in (("states", states), ("actions", actions), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise _tomrl.Error(f"{name} must be an integer (got {value!r})")
    if forms is not None and (isinstance(forms, str) or not all(isinstance(f, str) for f in forms)):
        raise _tomrl.Error("forms must be a list of form names")
    return _tomrl.verify_weights(int(states), int(actions), bool(stochastic), int(seed), list(forms or []),
                                 None if steps is None else int(steps))
