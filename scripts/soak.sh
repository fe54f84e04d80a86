#!/usr/bin/env bash
# Kill-anywhere soak: MBPO+TOM (small settings, --threads 1) SIGKILLed at many random
# moments, about half of them while a checkpoint is being written, resumed each time;
# each round's final metrics.csv and weights.csv must equal an uninterrupted run's
# (all but the timing columns, byte for byte). The short version (12 kills) runs in CI
# as the e2e test Robustness.KilledAnywhereResumesToTheUninterruptedResult.
#
#   scripts/soak.sh [rounds] [kills per round]     (default 5 rounds of 60 kills)
# Environment: TOM_BUILD_DIR (default build), TOM_SOAK_OBJECTIVE (default tom),
# TOM_SOAK_SEED (first round's seed; default random). Builds tom and test_e2e first
# unless TOM_SOAK_NO_BUILD is set.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
kills=${2:-60}
build_dir=${TOM_BUILD_DIR:-build}
if [ -z "${TOM_SOAK_NO_BUILD:-}" ]; then
  [ -f "$build_dir/build.ninja" ] || cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  nice -n 5 cmake --build "$build_dir" -j2 --target tom test_e2e >/dev/null
fi
seed=${TOM_SOAK_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
failed=0 total_kills=0 total_mid=0
start=$(date +%s)
for round in $(seq 1 "$rounds"); do
  log=$(mktemp)
  if TOM_SOAK_KILLS=$kills TOM_SOAK_SEED=$seed "$build_dir/test_e2e" \
      --gtest_filter=Robustness.KilledAnywhereResumesToTheUninterruptedResult >"$log" 2>&1; then
    result=pass
  else
    result=FAIL
    failed=$((failed + 1))
  fi
  line=$(grep '^soak:' "$log" || echo "soak: (no summary)")
  echo "round $round: $result; $line"
  [ "$result" = pass ] || grep -E 'Failure|step [0-9]+, ' "$log" | head -20
  k=$(sed -n 's/^soak: seed [0-9]*, \([0-9]*\) kills (\([0-9]*\) while.*/\1 \2/p' "$log")
  k=${k:-"0 0"}
  total_kills=$((total_kills + ${k% *})) total_mid=$((total_mid + ${k#* }))
  rm -f "$log"
  seed=$((seed + 1))
done
echo "soak: $rounds rounds, $total_kills kills ($total_mid while a checkpoint was being written)," \
  "$failed round(s) failed, $(( $(date +%s) - start )) s"
[ "$failed" -eq 0 ]
