#!/usr/bin/env bash
# Where each phase's time goes, GEMM against the rest (issue 40): runs each phase's own
# benchmark from build/tom_bench under `perf record` on one thread and sorts its samples
# into kinds of work by the library and symbol they fell in. Writes
# experiments/profiles/phases.csv (phase, benchmark, kind, share of samples, samples) and
# rewrites the generated table in docs/results.md from it (scripts/profile_table.py); with
# the precision bf16, experiments/profiles/phases_bf16.csv and its table in docs/precision.md.
#   scripts/profile_phases.sh [seconds per benchmark, default 10] [precision, default fp32]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
precision=${2:-fp32}
python=/usr/bin/python3
case $precision in
  fp32) out=experiments/profiles/phases.csv doc=docs/results.md ;;
  bf16) out=experiments/profiles/phases_bf16.csv doc=docs/precision.md ;;
  *) echo "profile_phases.sh: precision must be fp32 or bf16, not '$precision'" >&2; exit 1 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v perf >/dev/null || { echo "profile_phases.sh: needs perf (Debian: linux-perf)" >&2; exit 1; }
# phase name, benchmark filter (one thread each, as one core of a sweep runs them)
phases=(
  "whole epoch: tom-paper + TOM|BM_Epoch/tom_paper_tom/1/"
  "whole epoch: mbpo-paper + MLE|BM_Epoch/mbpo_paper_mle/1/"
  "sac update|BM_SacUpdate/1$"
  "model fit: MDN (tom-paper)|BM_MdnTrainStep/1/"
  "model fit: ensemble (mbpo-paper)|BM_EnsembleTrainStep/1/"
  "rollout: MDN, 100k rows|BM_MdnRollout100k"
  "rollout: ensemble, 100k rows|BM_EnsembleRollout100k"
  "TOM dual step|BM_TomDualTrain/1$"
  "TOM discriminator step|BM_DiscriminatorStep/1$"
)
{
  echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $precision"
  echo "phase,benchmark,kind,share,samples"
} > "$work/phases.csv"
for entry in "${phases[@]}"; do
  phase=${entry%%|*}
  filter=${entry#*|}
  perf record -q -F 999 -o "$work/perf.data" -- build/tom_bench --precision="$precision" --benchmark_filter="$filter" \
    --benchmark_min_time="$seconds" >/dev/null 2>&1
  perf report -i "$work/perf.data" --no-children -n --sort dso,sym --stdio 2>/dev/null |
    "$python" scripts/profile_table.py --classify "$phase" "$filter" >> "$work/phases.csv"
  echo "profiled: $phase" >&2
done
mv "$work/phases.csv" "$out"
"$python" scripts/profile_table.py --into "$doc" "$out"
