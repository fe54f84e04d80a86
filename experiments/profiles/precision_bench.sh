#!/usr/bin/env bash
# The precision benchmarks of docs/precision.md, one round: each precision's whole epochs
# (BM_Epoch, one thread), then its phases and BM_Linear, into
# experiments/profiles/precision_{epoch,phases}_<precision>_<round>.json. OpenBLAS chooses
# its own kernels (OPENBLAS_CORETYPE unset). Then: scripts/bench_table.py --into docs/precision.md
#   experiments/profiles/precision_bench.sh ROUND
set -euo pipefail
cd "$(dirname "$0")/../.."
round=${1:?usage: precision_bench.sh ROUND}
for p in fp32 fp32-fused bf16; do
  env -u OPENBLAS_CORETYPE build/tom_bench --precision=$p --benchmark_filter='BM_Epoch/(tom_paper_tom|mbpo_paper_mle)/1/' \
    --benchmark_out=experiments/profiles/precision_epoch_${p}_${round}.json --benchmark_out_format=json
  env -u OPENBLAS_CORETYPE build/tom_bench --precision=$p \
    --benchmark_filter='BM_SacUpdate/1$|BM_MdnTrainStep/1|BM_EnsembleTrainStep/1|BM_TomDualTrain/1|BM_DiscriminatorStep/1|Rollout100k|BM_Linear' \
    --benchmark_min_time=2 --benchmark_out=experiments/profiles/precision_phases_${p}_${round}.json --benchmark_out_format=json
done
