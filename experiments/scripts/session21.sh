#!/usr/bin/env bash
# Session 21 (new machine, AVX-512; the old machine's checkpoints are gone): issue 34 groups
# 3-5 from scratch. Groups 3 and 4 on binary ec69240 (clean checkout, this session's HEAD at
# its start); one seed's two cells at a time on one core each. Rerun to resume.
set -u
cd ~/tom-experiments
sweep() {  # binary task steps out extra-args...
  local bin=$1 task=$2 steps=$3 out=$4
  shift 4
  nice -n 19 env -u OPENBLAS_CORETYPE ~/tom-experiments/bin/$bin/tom sweep --family tom-paper --env $task \
    --steps $steps --checkpoint-every 1000 --jobs 2 --cores 2 --out ~/tom-experiments/sweeps/$out "$@"
}
for seed in 0 1 2; do
  sweep ec69240 ant 30000 ant_tom-paper_seed$seed --model-objective mle,tom --seeds $seed
done
for seed in 0 1; do
  sweep ec69240 humanoid 20000 humanoid_tom-paper_seed$seed --model-objective mle,tom --seeds $seed
done
