#!/usr/bin/env bash
# Installs what is missing, builds, then runs the main job on its default settings:
# MBPO with TOM as the model-learning objective on inverted_pendulum, with the tom-paper
# settings (MDN model) and a reduced rollout batch: 6000 env steps, 4.5-11 minutes on
# 2 cores. Extra arguments are passed to `tom train`. Ends by drawing the learning curve and
# the weight-vs-age heatmap into <run>/plots/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${TOM_BUILD_DIR:-build}
out="runs/main_$(date +%Y%m%d_%H%M%S)"
status=0
"$build_dir/tom" train --family tom-paper --env inverted_pendulum --model-objective tom --steps 6000 \
  --set mbpo.rollout_batch_size=10000 --threads 2 --eval-every 500 --out "$out" "$@" || status=$?
# The learning curve and the weight-vs-age picture of the run, next to its metrics.
if [[ -s "$out/metrics.csv" ]]; then
  if "$build_dir/tom" plot "$out" --out "$out/plots" --figures curves,weights > "$out/plots.log" 2>&1; then
    echo "figures: $(ls "$out"/plots/*.png | tr '\n' ' ')"
  else
    echo "plotting failed (see $out/plots.log)" >&2
  fi
fi
exit "$status"
