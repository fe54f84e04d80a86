#!/usr/bin/env bash
# CI sanitizer stage (gcc's sanitizers; clang cannot compile LibTorch's headers here).
#   asan: every unit-test binary (all tests/<piece> but e2e) built with AddressSanitizer +
#         UndefinedBehaviorSanitizer in build-asan, run with the long learning tests left
#         out (TOM_SANITIZE_SKIP, a ctest regex).
#   tsan: tsan_threads (the two-thread tests: WorkerThread, SAC's update, the model fits,
#         the discriminator, the TOM dual and the CEM planner) built with ThreadSanitizer in build-tsan. LibTorch itself is not instrumented: reports from inside it are
#         suppressed (scripts/tsan.supp), races in our code are not.
#   scripts/ci_sanitize.sh [asan|tsan|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
skip=${TOM_SANITIZE_SKIP:-Solves|Learns|Finite|Parity}

if [[ $what == asan || $what == all ]]; then
  flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g1"
  [[ -f build-asan/build.ninja ]] ||
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOM_PYTHON=OFF "-DCMAKE_CXX_FLAGS=$flags" >/dev/null
  targets=()
  for dir in tests/*/; do
    piece=$(basename "$dir")
    [[ $piece != e2e ]] && compgen -G "$dir*.cpp" >/dev/null && targets+=("test_$piece")
  done
  t0=$SECONDS
  nice -n 5 cmake --build build-asan -j2 --target "${targets[@]}" >build-asan/build.log 2>&1 ||
    { grep -E -A3 'error|undefined reference' build-asan/build.log | head -40 >&2; echo "asan: the build failed (build-asan/build.log)" >&2; exit 1; }
  echo "asan: built ${targets[*]} in $((SECONDS - t0)) s"
  t0=$SECONDS
  # LibTorch's and MuJoCo's global state is never freed at exit: leaks are not checked.
  ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j 2 -E "$skip|_NOT_BUILT"
  echo "asan: unit tests ran in $((SECONDS - t0)) s (left out: $skip)"
fi

if [[ $what == tsan || $what == all ]]; then
  [[ -f build-tsan/build.ninja ]] ||
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOM_TSAN=ON -DTOM_PYTHON=OFF \
      "-DCMAKE_CXX_FLAGS=-fsanitize=thread -fno-omit-frame-pointer -g1" >/dev/null
  t0=$SECONDS
  # Quiet on success; on failure the build's own errors are the message.
  nice -n 5 cmake --build build-tsan -j2 --target tsan_threads >build-tsan/build.log 2>&1 ||
    { grep -E -A3 'error|undefined reference' build-tsan/build.log | head -40 >&2; echo "tsan: the build failed (build-tsan/build.log)" >&2; exit 1; }
  echo "tsan: built tsan_threads in $((SECONDS - t0)) s"
  t0=$SECONDS
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp" \
    build-tsan/tsan_threads --gtest_filter='WorkerThread.*:Sac.TwoThread*:Sac.SaveLoad*:Sac.UpdateMatches*:*TwoThread*:FitThreads.*'
  echo "tsan: ran in $((SECONDS - t0)) s"
fi
