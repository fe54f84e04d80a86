#!/usr/bin/env bash
# Session 19: issue 35's PETS runs first (halfcheetah, pets-paper family with the CPU planner
# preset, MLE and TOM, seeds 0 and 1, 20k steps, binary 0a0e6d8), then issue 34's groups
# (groups_3_to_5.sh resumes group 2's seed 2 first). Rerun to resume.
set -u
cd ~/tom-experiments
nice -n 19 env -u OPENBLAS_CORETYPE ~/tom-experiments/bin/0a0e6d8/tom sweep --family pets-paper --env halfcheetah \
  --config ~/tom-experiments/pets_cpu_planner.toml --model-objective mle,tom --seeds 0,1 --steps 20000 \
  --eval-every 2500 --checkpoint-every 1000 --jobs 2 --cores 2 \
  --out ~/tom-experiments/sweeps/halfcheetah_pets-paper_cpu-planner
./groups_3_to_5.sh
