#!/usr/bin/env bash
# Checks that two `tom` binaries train bit-identically (--threads 1): runs a set of short
# runs covering every backbone, model and objective with each binary, then compares
# metrics.csv and weights.csv cell by cell, leaving out the wall-clock columns.
#   scripts/same_results.sh OLD_TOM NEW_TOM [WORK_DIR]
# NEW_THREADS=2 runs the new side at --threads 2 (with the same binary on both sides:
# whether 2 threads compute exactly what 1 thread does).
# ONLY="pmac tom" runs only the cases named (see `cases` below).
# Give WORK_DIR to keep the OLD runs for the next comparison. Exit status 0 when every run matches; the differing files are named otherwise.
set -euo pipefail
old=$1 new=$2 work=${3:-$(mktemp -d /tmp/tom_same.XXXXXX)}
small=(--eval-every 250 --eval-episodes 1 --checkpoint-every 1000 --set sac.hidden_size=32)
mbpo=(--set mbpo.rollout_batch_size=500 --set ensemble.hidden_units=32 --set ensemble.max_epochs=5
      --set tom_dual.steps=40 --set tom_dual.hidden=32 --set discriminator.passes=2)
mdn=(--set mbpo.rollout_batch_size=500 --set mdn.hidden_units=32 --set mdn.max_epochs=5 --set tom_dual.steps=40 --set tom_dual.hidden=32
     --set discriminator.passes=2 --set mbpo.random_steps=500 --set sac.batch_size=64
     --set tom.recent_pool=200 --set mbpo.model_train_freq=250)
declare -A cases=(
  # The main job (scripts/run.sh) as it runs, to 3000 of its 6000 steps.
  [main]="--family tom-paper --env inverted_pendulum --model-objective tom --steps 3000 --set mbpo.rollout_batch_size=10000 --eval-every 500"
  [sac]="--algo sac --env inverted_pendulum --steps 1000 --seed 3 --set sac_loop.random_steps=300 --set sac_loop.update_after=300"
  [mle]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective mle ${mbpo[*]}"
  [tom]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective tom ${mbpo[*]}"
  [tom_u]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective tom ${mbpo[*]} --set tom_dual.form=conjugate-u"
  [tom_minimax]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective tom ${mbpo[*]} --set tom_dual.form=minimax --set tom_dual.lr=0.0001"
  [tom_converge]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective tom ${mbpo[*]} --set tom_dual.schedule=converge --set tom_dual.steps=300 --set tom_dual.check_every=50 --set tom.reference_steps=200"
  [pmac]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective pmac ${mbpo[*]}"
  [vagram]="--family mbpo-paper --env inverted_pendulum --steps 1000 --seed 5 --model-objective vagram ${mbpo[*]}"
  [paper_tom]="--family tom-paper --env hopper --steps 1500 --seed 2 --model-objective tom ${mdn[*]}"
  [paper_mle]="--family tom-paper --env hopper --steps 1500 --seed 2 --model-objective mle ${mdn[*]}"
)
# Drops the wall-clock columns (wall_s, steps_per_s, time_*) of a CSV file.
strip_times() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) keep[i] = ($i != "wall_s" && $i != "steps_per_s" && $i !~ /^time_/) }
           { line = ""; for (i = 1; i <= NF; ++i) if (keep[i]) line = line $i ","; print line }' "$1"
}
mkdir -p "$work/old" "$work/new"
status=0
for name in $(printf '%s\n' "${!cases[@]}" | sort); do
  [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]] && continue
  for side in old new; do
    bin=${!side}
    # The old binary's runs are kept in WORK_DIR and reused when it is given again.
    [[ $side == old && -f $work/old/$name/metrics.csv ]] && continue
    rm -rf "${work:?}/$side/$name"
    # shellcheck disable=SC2086  # the case strings are word lists on purpose
    threads=1
    [[ $side == new ]] && threads=${NEW_THREADS:-1}
    extra=("${small[@]}")
    [[ $name == main ]] && extra=()
    "$bin" train ${cases[$name]} "${extra[@]}" --threads "$threads" --out "$work/$side/$name" > "$work/$side/$name.log" 2>&1 ||
      { echo "$name: $side binary failed, see $work/$side/$name.log"; status=1; continue 2; }
  done
  for file in metrics.csv weights.csv; do
    [[ -f $work/old/$name/$file ]] || continue
    if cmp -s <(strip_times "$work/old/$name/$file") <(strip_times "$work/new/$name/$file"); then
      echo "$name/$file: identical ($(wc -l < "$work/old/$name/$file") lines)"
    else
      echo "$name/$file: DIFFERS"; status=1
    fi
  done
done
exit $status
