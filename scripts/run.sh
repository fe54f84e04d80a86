#!/usr/bin/env bash
# Installs what is missing, builds, then runs the main job on its default settings:
# MBPO on inverted_pendulum with the mbpo-paper settings (reduced rollout batch), a few
# minutes on 2 cores. Extra arguments are passed to `tom train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${TOM_BUILD_DIR:-build}
out="runs/main_$(date +%Y%m%d_%H%M%S)"
exec "$build_dir/tom" train --family mbpo-paper --env inverted_pendulum --steps 5000 \
  --set mbpo.rollout_batch_size=10000 --threads 2 --out "$out" "$@"
