#!/usr/bin/env bash
# Rewrites every generated block of README.md and docs/*.md from the committed runs: each
# block's first line records its `tom compare` arguments, which are run again with
# --into/--block (GeneratedBlocks.* in the suite fails while a block is stale).
#   scripts/regenerate_results.sh [tom binary, default build/tom]
set -euo pipefail
cd "$(dirname "$0")/.."
tom=${1:-build/tom}
for file in README.md docs/*.md; do
  { grep -o '<!-- tom compare [^:]*: .* -->' "$file" || true; } | while IFS= read -r line; do
    name=${line#<!-- tom compare }
    name=${name%%:*}
    args=${line#*: }
    args=${args% -->}
    # shellcheck disable=SC2086  # the recorded arguments are words without spaces
    "$tom" compare $args --into "$file" --block "$name" >/dev/null 2>&1 ||
      { echo "$file: block $name: tom compare $args failed" >&2; exit 1; }
    echo "$file: $name"
  done
done
