#!/usr/bin/python3
"""LibTorch's own account of a model fit, op by op (issue 40): what the profile of
scripts/profile_phases.sh shows as one column ("LibTorch element-wise ops, reductions,
dispatch"), split by ATen op. Runs tomrl.fit_model (the model-learning stage: the model's
fit and the objective's plan) on random transitions of hopper's shape under
torch.profiler, on one thread, and prints the ops by their own CPU time. The profiler adds
a few microseconds to every op, so small ops look dearer than they are: read it for which
ops to fuse, and time the result with build/tom_bench.

Needs Debian's python3-torch (the same LibTorch 1.13 as tom-rl) and the built module:
  PYTHONPATH=build/python /usr/bin/python3 scripts/profile_ops.py [--objective mle|tom]
      [--model mdn|ensemble] [--rows 20000] [--epochs 5] [--top 25]
"""
import argparse
import sys

import numpy as np

try:
    import torch
    from torch.profiler import ProfilerActivity, profile
except ImportError:
    sys.exit("profile_ops.py: needs Debian's python3-torch (apt-get install python3-torch)")
try:
    import tomrl
except ImportError:
    sys.exit("profile_ops.py: cannot import tomrl; run it with PYTHONPATH=build/python after scripts/setup.sh")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", default="mle", choices=["mle", "tom"])
    parser.add_argument("--model", default="mdn", choices=["mdn", "ensemble"])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if args.rows < 2000 or args.epochs < 1 or args.top < 1:
        parser.error("--rows must be at least 2000 (TOM's pools), --epochs and --top at least 1")
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(args.rows, 11))
    action = rng.uniform(-1, 1, size=(args.rows, 3))
    next_obs = obs + 0.1 * rng.normal(size=obs.shape)
    reward = rng.normal(size=args.rows)

    def policy(states):  # a cheap deterministic stand-in: the op count is the stage's
        return np.tanh(states[:, :3])

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        tomrl.fit_model(obs, action, reward, next_obs, policy=policy, objective=args.objective,
                        settings={"mbpo.model": args.model, f"{args.model}.max_epochs": args.epochs})
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))


if __name__ == "__main__":
    main()
