"""tom-rl from Python: tasks as Gymnasium environments, runs (train, resume, load) and
their policies, dynamics models and TOM weights.

    import tomrl
    env = tomrl.make("hopper")
    run = tomrl.train(env="inverted_pendulum", algo="mbpo", objective="tom", steps=3000, out="runs/ip")
    run.metrics, run.policy.act(obs), run.model.predict(obs, action)

Bad input raises tomrl.Error (a ValueError) with the command line's one-line message; an
unknown name raises tomrl.UnknownNameError (also a KeyError); a missing run directory
FileNotFoundError.
"""
from . import _tomrl
from ._tomrl import env_names

Error = _tomrl.Error
UnknownNameError = _tomrl.UnknownNameError
# KeyError quotes its message; this one reads as the command line's line.
UnknownNameError.__str__ = lambda self: str(self.args[0]) if self.args else ""

from .spaces import Box  # noqa: E402
from .envs import Env, VecEnv, make, make_vec  # noqa: E402
from .runs import Run, config, load, resume, train  # noqa: E402
from .user_envs import register_env, unregister_env  # noqa: E402
from .model_learning import FitResult, fit_model, verify_weights  # noqa: E402

__all__ = ["Box", "Env", "Error", "FitResult", "fit_model", "verify_weights", "Run", "UnknownNameError", "VecEnv", "config", "env_names", "load", "make",
           "make_vec", "register_env", "resume", "train", "unregister_env"]
