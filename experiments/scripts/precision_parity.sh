#!/usr/bin/env bash
# Session 22: issue 40's learning parity, tom-paper hopper with TOM to 20k steps, seeds 0-2,
# fp32 against bf16 (one binary, 063adf9, for all six cells). Starts when issue 34's humanoid
# queue (session21.sh) has finished, so that those runs keep both cores. Rerun to resume.
set -u
cd ~/tom-experiments
while pgrep -f session21.sh >/dev/null; do sleep 60; done
nice -n 19 env -u OPENBLAS_CORETYPE ~/tom-experiments/bin/063adf9/tom sweep --family tom-paper --env hopper \
  --model-objective tom --seeds 0-2 --steps 20000 --checkpoint-every 1000 --grid run.precision=fp32,bf16 \
  --jobs 2 --cores 2 --out ~/tom-experiments/sweeps/hopper_tom-paper_precision
