#!/usr/bin/python3
"""One MBPO epoch of ours against the PyTorch peer's price for the same work.

Runs tom_bench's BM_Epoch cases (one whole epoch of 1000 hopper env steps, as `tom train`
runs it) at the given thread counts, then pytorch_peer.py on the same OpenBLAS kernels,
in the same window, and prices the work our epoch did (its SAC updates, model gradient
steps, rollouts and TOM plans, as counted by the trainer) with the peer's per-phase
milliseconds. Prints the peer's phases, then one table row per case: our seconds, the
peer's, their ratio, and our phase split.

    scripts/epoch_vs_peer.py [--threads 1,2] [--cases mbpo_paper_mle,tom_paper_mle,tom_paper_tom]
                             [--bench build/tom_bench] [--peer ../shared/bench/pytorch_peer.py]
Run it with Debian's python3 (python3-torch); nothing else should run meanwhile.
"""
import argparse
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--threads", default="1,2")
p.add_argument("--cases", default="mbpo_paper_mle,tom_paper_mle,tom_paper_tom")
p.add_argument("--bench", default=os.path.join(here, "..", "build", "tom_bench"))
p.add_argument("--peer", default=os.path.join(here, "..", "..", "shared", "bench", "pytorch_peer.py"))
args = p.parse_args()
threads = [int(t) for t in args.threads.split(",")]
cases = args.cases.split(",")

# TOM's work per plan besides its dual steps: 100 discriminator passes over a pool of 1000
# in batches of 256 (4 batches a pass), and two weight passes over the buffer.
DUAL_STEPS, DISC_STEPS, WEIGHT_PASSES = 1000, 400, 2

pattern = "BM_Epoch/(" + "|".join(cases) + ")/(" + "|".join(map(str, threads)) + ")/"
ours = json.loads(subprocess.run([args.bench, "--benchmark_filter=" + pattern, "--benchmark_format=json"],
                                 check=True, capture_output=True, text=True).stdout)
kernel = ours["context"].get("openblas_kernel", "")
env = dict(os.environ)
if kernel:
    env["OPENBLAS_CORETYPE"] = kernel
peer = {}
for t in threads:
    env["OPENBLAS_NUM_THREADS"] = str(t)
    out = subprocess.run(["/usr/bin/python3", args.peer, "--threads", str(t), "--pool", "20000"], check=True,
                         capture_output=True, text=True, env=env).stdout
    peer[t] = json.loads(out.strip().splitlines()[-1])

print(f"OpenBLAS kernel: {kernel or 'default'}")
for t in threads:
    print(f"peer phases, {t} thread(s), ms: " +
          "  ".join(f"{k[:-3]} {v:.2f}" for k, v in peer[t].items() if k.endswith("_ms")))
print(f"{'case':<16} {'threads':>7} {'ours s':>8} {'peer s':>8} {'ratio':>6}   phases (ours, s)")
for b in ours["benchmarks"]:
    case, t = b["name"].split("/")[1], int(b["name"].split("/")[2])
    ph = peer[t]
    model_step = ph["mdn_train_step_ms"] if case.startswith("tom_paper") else ph["ensemble_train_step_ms"]
    fits = b["model_fits"]
    peer_ms = b["sac_updates"] * ph["sac_update_ms"] + b["model_steps"] * model_step + fits * ph["rollout_100k_ms"]
    if case.endswith("_tom"):
        peer_ms += fits * (DUAL_STEPS * ph["tom_q_step_ms"] + DISC_STEPS * ph["disc_step_ms"] +
                           WEIGHT_PASSES * ph["weights_pass_ms"])
    seconds = b["real_time"]  # the benchmark's unit is seconds
    phases = "  ".join(f"{k[:-2]} {b[k]:.1f}" for k in ("sac_s", "model_fit_s", "rollout_s", "objective_s", "env_s"))
    print(f"{case:<16} {t:>7} {seconds:>8.1f} {peer_ms / 1e3:>8.1f} {seconds / (peer_ms / 1e3):>6.2f}   {phases}")
sys.stdout.flush()
