#!/usr/bin/env bash
# Session 22: humanoid seed 1 (issue 34 group 4) started beside seed 0's last epochs
# (session21.sh stopped after seed 0's sweep had started, so that seed 1 need not wait for
# seed 0's slower TOM cell); then, when no humanoid sweep runs, issue 40's precision parity
# (precision_parity.sh without its wait). Rerun to resume.
set -u
cd ~/tom-experiments
nice -n 19 env -u OPENBLAS_CORETYPE ~/tom-experiments/bin/ec69240/tom sweep --family tom-paper --env humanoid \
  --steps 20000 --checkpoint-every 1000 --jobs 2 --cores 2 --out ~/tom-experiments/sweeps/humanoid_tom-paper_seed1 \
  --model-objective mle,tom --seeds 1
while pgrep -f "sweep --family tom-paper --env humanoid" >/dev/null; do sleep 60; done
nice -n 19 env -u OPENBLAS_CORETYPE ~/tom-experiments/bin/063adf9/tom sweep --family tom-paper --env hopper \
  --model-objective tom --seeds 0-2 --steps 20000 --checkpoint-every 1000 --grid run.precision=fp32,bf16 \
  --jobs 2 --cores 2 --out ~/tom-experiments/sweeps/hopper_tom-paper_precision
