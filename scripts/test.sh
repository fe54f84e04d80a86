#!/usr/bin/env bash
# Installs, builds and runs the whole test suite (unit, parity and end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${TOM_BUILD_DIR:-build}
ctest --test-dir "$build_dir" --output-on-failure -j 2 "$@"
