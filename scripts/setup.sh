#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages only), then configures and builds.
# Idempotent: a second run installs nothing and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ libtorch-dev libmujoco-dev libqhull-dev
          libopenblas0-pthread libcli11-dev nlohmann-json3-dev libfmt-dev
          libtomlplusplus-dev libdnnl-dev libgtest-dev libgmock-dev libbenchmark-dev libboost-math-dev
          gnuplot-nox libegl-dev libegl-mesa0 ffmpeg
          pybind11-dev python3-numpy python3-pandas python3-pytest python3-torch python3-matplotlib)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "Installing: ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi
# LibTorch must run on OpenBLAS: Debian's reference BLAS makes it about 4x slower.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
if [[ -n "$blas" && "$blas" != *openblas* ]]; then
  echo "warning: libblas.so.3 is $blas, not OpenBLAS; LibTorch will be slow." >&2
  echo "         select it with: update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2
fi

build_dir=${TOM_BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build "$build_dir" -j "$(nproc)"
# The Python package: Debian's python3 finds <build>/python through a .pth file, so
# `import tomrl` works from anywhere (as an editable install does).
python=/usr/bin/python3
if [[ -x $python && -d "$build_dir/python/tomrl" ]]; then
  site=$("$python" -c 'import site; print(site.getsitepackages()[0])')
  pth="$site/tomrl.pth"
  target=$(cd "$build_dir/python" && pwd)
  if [[ ! -f $pth || $(cat "$pth") != "$target" ]]; then
    if mkdir -p "$site" 2>/dev/null && echo "$target" > "$pth" 2>/dev/null; then
      echo "Python: tomrl importable by $python ($pth)"
    else
      echo "note: cannot write $pth; use PYTHONPATH=$target" >&2
    fi
  fi
fi
