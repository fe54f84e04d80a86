#!/usr/bin/env bash
# CI fuzzing stage: builds the libFuzzer targets (fuzz/, clang with ASan + UBSan) in
# build-fuzz and runs each for TOM_FUZZ_SECONDS (default 30) seconds, starting from its
# committed seed corpus fuzz/corpus/<name> (which also holds every past finding). New
# inputs go to a scratch directory; a crash or a non-tom::Error exception fails the stage
# and leaves the input in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${TOM_FUZZ_SECONDS:-30}
dir=build-fuzz
missing=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
[[ -f $dir/build.ninja ]] ||
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOM_FUZZ=ON -DTOM_PYTHON=OFF >/dev/null
nice -n 5 cmake --build "$dir" -j2 --target fuzz_settings fuzz_checkpoint fuzz_results >/dev/null
mkdir -p "$dir/artifacts"
for name in settings checkpoint results; do
  scratch=$(mktemp -d)
  log="$dir/fuzz_$name.log"
  if ! "$dir/fuzz_$name" -max_total_time="$seconds" -artifact_prefix="$dir/artifacts/" -print_final_stats=1 \
      "$scratch" "fuzz/corpus/$name" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz_$name FAILED; the input is in $dir/artifacts/ (add it to fuzz/corpus/$name once fixed)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz_$name: ${seconds} s, $runs inputs, no finding"
  rm -rf "$scratch"
done
