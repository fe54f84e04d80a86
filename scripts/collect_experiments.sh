#!/usr/bin/env bash
# Copies the small result files of every run under ~/tom-experiments/sweeps (config.toml,
# metrics.csv, weights.csv, and each sweep's sweep.json) into experiments/, keeping the
# sweep/cell layout, so that results survive a change of machine. Checkpoints stay out, and
# so do runs that have not finished an evaluation yet.
#   scripts/collect_experiments.sh [experiments root, default ~/tom-experiments]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${1:-$HOME/tom-experiments}
[[ -d $root/sweeps ]] || { echo "no sweeps under $root" >&2; exit 1; }
for sweep in "$root"/sweeps/*/; do
  name=$(basename "$sweep")
  mkdir -p "experiments/$name"
  [[ -f $sweep/sweep.json ]] && cp "$sweep/sweep.json" "experiments/$name/"
  while IFS= read -r config; do
    run=$(dirname "$config")
    # A run without an evaluation yet has nothing to compare (tom compare refuses it).
    [[ -f $run/metrics.csv && $(wc -l < "$run/metrics.csv") -ge 2 ]] || continue
    dest="experiments/$name/${run#"$sweep"}"
    mkdir -p "$dest"
    for f in config.toml metrics.csv weights.csv; do
      [[ -f $run/$f ]] && cp "$run/$f" "$dest/"
    done
  done < <(find "$sweep" -name config.toml)
done
echo "copied into experiments/: $(find experiments -name metrics.csv | wc -l) runs"
