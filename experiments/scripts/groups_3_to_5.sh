#!/usr/bin/env bash
# Issue 34 groups 2-5 in order (written in session 18); rerun to resume (finished cells are
# skipped). Group 2 first (its own script), then:
#   group 3: ant, tom-paper, MLE and TOM, seeds 0-2 to 30k, binary bd21a22 (as group 2);
#   group 4: humanoid, tom-paper, MLE and TOM, seeds 0-1 to 20k, binary bd21a22;
#   group 5: hopper, tom-paper, TOM with the conjugate-u dual, seeds 3-5 to 50k, binary
#            6d2c411 (group 1's, so it compares with group 1's MLE and TOM arms).
# One seed's two cells at a time on one core each (group 5: two seeds at a time).
set -u
cd ~/tom-experiments
./group2.sh
sweep() {  # binary task steps out extra-args...
  local bin=$1 task=$2 steps=$3 out=$4
  shift 4
  nice -n 19 env -u OPENBLAS_CORETYPE ~/tom-experiments/bin/$bin/tom sweep --family tom-paper --env $task \
    --steps $steps --checkpoint-every 1000 --jobs 2 --cores 2 --out ~/tom-experiments/sweeps/$out "$@"
}
for seed in 0 1 2; do
  sweep bd21a22 ant 30000 ant_tom-paper_seed$seed --model-objective mle,tom --seeds $seed
done
for seed in 0 1; do
  sweep bd21a22 humanoid 20000 humanoid_tom-paper_seed$seed --model-objective mle,tom --seeds $seed
done
sweep 6d2c411 hopper 50000 hopper_tom-paper_conjugate-u_seeds34 --model-objective tom --set tom_dual.form=conjugate-u --seeds 3,4
sweep 6d2c411 hopper 50000 hopper_tom-paper_conjugate-u_seed5 --model-objective tom --set tom_dual.form=conjugate-u --seeds 5
