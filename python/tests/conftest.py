import os
import sys

import pytest

# The package of the build under test (ctest sets TOM_BINARY_DIR), before any other on the path.
_build = os.environ.get("TOM_BINARY_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
sys.path.insert(0, os.path.abspath(os.path.join(_build, "python")))

import tomrl  # noqa: E402

# Small, fast MBPO settings (as the C++ end-to-end tests): inverted_pendulum, fits from
# step 500 every 250 steps.
SMALL_MBPO = {"mbpo.rollout_batch_size": 500, "sac.hidden_size": 32, "ensemble.hidden_units": 32,
              "ensemble.max_epochs": 5, "tom_dual.steps": 40, "tom_dual.hidden": 32, "discriminator.passes": 2}


@pytest.fixture(scope="session")
def mbpo_tom_run(tmp_path_factory):
    """A 1000-step MBPO + TOM run on inverted_pendulum, shared by the tests that read one."""
    out = tmp_path_factory.mktemp("runs") / "mbpo_tom"
    return tomrl.train(env="inverted_pendulum", algo="mbpo", objective="tom", family="mbpo-paper", steps=1000, seed=5,
                       threads=1, eval_every=250, eval_episodes=1, checkpoint_every=250,
                       settings={**SMALL_MBPO, "ensemble.max_epochs": 50},
                       out=str(out))
