#!/usr/bin/env bash
# Issue 34 group 2 (started in session 17): halfcheetah, tom-paper, MLE and TOM, seeds 0-2 to
# 30k, one seed's two cells at a time on one core each; binary of bd21a22 (clean checkout).
# Rerun to resume (finished cells are skipped).
set -u
BIN=~/tom-experiments/bin/bd21a22/tom
run() { nice -n 19 env -u OPENBLAS_CORETYPE $BIN sweep --family tom-paper --env halfcheetah \
    --model-objective mle,tom --seeds $1 --steps 30000 --checkpoint-every 1000 --jobs 2 --cores 2 \
    --out ~/tom-experiments/sweeps/halfcheetah_tom-paper_seed$1; }
run 0
run 1
run 2
