#!/usr/bin/env bash
# The GPU checks of issue 14 in one go, for a GPU machine that cannot reach a package registry (docs/gpu.md,
# "Running the GPU checks"). Steps, each with its own time limit inside a total budget:
#
#   receive   copy the bundle parts carried in this call (.gpu-bundle/part-*) to $WORK; say which are missing
#   run       (once every part is there) check the bundle's sha256, unpack node, node_modules, dist and the
#             provider libraries; gpu:install with the CUDA 13 libraries of the image's Python (--cuda-from-python);
#             the GPU tests (dist/test/gpu); full-size random PixArt-Σ components (transformer and VAE in fp16);
#             bench/staged-recipe on CUDA at 1024 px without the T5 (20 steps), step by step and then with the
#             in-graph denoising loop (5 steps per onnxruntime run: host traffic and s/step of both), then, if the
#             budget allows, the whole recipe with a random full-size T5 quantized to int8 (2 steps).
#
# Results go to $OUT (at most 8 files come back): summary.txt, install-and-tests.log, bench-notext.{log,json},
# bench-loop.{log,json}, bench-int8.{log,json}. Usage, in the repository root of the device's copy:
#   bash tools/gpu/device-check.sh receive          # for each call that carries a part
#   bash tools/gpu/device-check.sh receive run      # the call that carries the last part
# Environment: BUDGET_S (default 560: the call's 600 s limit minus a margin), WORK (default /var/tmp/pixart-gpu),
# PY (default python3: the image's Python with torch, transformers and NVIDIA's cu13 libraries), DEVICE (default
# cuda; "cpu" only to rehearse the flow without a GPU). Components already in $WORK/pixart-full are not made again
# (a second `run` on a warm machine skips that step).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${WORK:-/var/tmp/pixart-gpu}"
OUT="${OUT:-$ROOT/.gpu-out}"
BUDGET_S="${BUDGET_S:-560}"
PY="${PY:-python3}"
DEVICE="${DEVICE:-cuda}"
START=$(date +%s)
mkdir -p "$WORK/parts" "$OUT"
left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }
log() { echo "[$(date -u +%H:%M:%S) +$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/summary.txt"; }

receive() {
  local manifest="$ROOT/.gpu-bundle/MANIFEST"
  [ -f "$manifest" ] || { log "no .gpu-bundle/MANIFEST in this call's tree: carry it with every part"; return 1; }
  cp "$manifest" "$WORK/MANIFEST"
  [ -f "$WORK/env.txt" ] || { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; command -v node && node -v;
    "$PY" -c 'import nvidia; print(list(nvidia.__path__))'; } > "$WORK/env.txt" 2>&1
  log "machine: $(tr '\n' ' ' < "$WORK/env.txt")"
  for p in "$ROOT"/.gpu-bundle/part-*; do [ -f "$p" ] && cp "$p" "$WORK/parts/" && log "received $(basename "$p")"; done
  local missing=""
  while read -r kind name sum size; do
    [ "$kind" = part ] || continue
    if [ ! -f "$WORK/parts/$name" ] || [ "$(stat -c %s "$WORK/parts/$name")" != "$size" ]; then missing="$missing $name"; fi
  done < "$WORK/MANIFEST"
  if [ -n "$missing" ]; then log "still missing:$missing"; return 2; fi
  log "all parts here"
}

unpack() {
  local want; want="$(awk '$1=="bundle"{print $2}' "$WORK/MANIFEST")"
  if [ ! -f "$WORK/bundle/.ok" ]; then
    local got; got="$(cat "$WORK"/parts/part-* | sha256sum | cut -d' ' -f1)"
    [ "$got" = "$want" ] || { log "bundle sha256 $got != $want"; return 1; }
    rm -rf "$WORK/bundle"; mkdir -p "$WORK/bundle"
    cat "$WORK"/parts/part-* | "$PY" -c 'import sys, tarfile; tarfile.open(fileobj=sys.stdin.buffer, mode="r|xz").extractall(sys.argv[1])' "$WORK/bundle" ||
      { log "unpacking failed"; return 1; }
    touch "$WORK/bundle/.ok"
  fi
  # The tree that travelled has no node_modules or dist (ignored by git): use the bundle's.
  for d in node_modules dist; do [ -e "$ROOT/$d" ] || ln -s "$WORK/bundle/$d" "$ROOT/$d"; done
  command -v node >/dev/null 2>&1 || export PATH="$WORK/bundle/node/bin:$PATH"
  log "unpacked; node $(node -v)"
}

run() {
  log "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n1)"
  unpack || return 1
  {
    echo "== gpu:install (CUDA libraries from $PY's nvidia packages)"
    "$PY" -m pip list 2>/dev/null | grep -iE '^(nvidia-(cuda-runtime|cublas|curand|cudnn)|torch) '
    bash "$ROOT/tools/gpu/install.sh" --cache "$WORK/bundle/cache" --cuda-from-python "$(command -v "$PY")"
    echo "== GPU tests"
    timeout 240 node --expose-gc --enable-source-maps node_modules/.bin/mocha --no-config --timeout 300000 dist/test/gpu/cuda.test.js
    echo "== GPU tests exit $?"
  } > "$OUT/install-and-tests.log" 2>&1
  log "install + tests: $(grep -cE '✔' "$OUT/install-and-tests.log") passing, $(grep -E '^\s+[0-9]+ failing' "$OUT/install-and-tests.log" | xargs) $(grep -E '^\s+[0-9]+ pending' "$OUT/install-and-tests.log" | xargs)"

  local full="$WORK/pixart-full" site="$WORK/site"
  if [ ! -d "$site/diffusers" ]; then "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$WORK"/bundle/wheels/*.whl >> "$OUT/summary.txt" 2>&1; fi
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  if [ "$(left)" -gt 90 ] && ! { [ -f "$full/transformer/config.json" ] && [ -f "$full/vae/config.json" ]; }; then
    log "making the full-size transformer and VAE (fp16, random)"
    timeout "$(( $(left) > 210 ? 150 : $(left) - 60 ))" "$PY" tools/reference/make_fullsize.py "$full" --components transformer,vae --dtype float16 >> "$OUT/summary.txt" 2>&1
  fi
  if [ "$(left)" -gt 60 ] && [ -f "$full/transformer/config.json" ] && [ -f "$full/vae/config.json" ]; then
    log "bench without the T5 (20 steps at 1024 px, step by step)"
    timeout "$(( $(left) - 20 ))" node --expose-gc dist/bench/staged-recipe.js --dir "$full" --device "$DEVICE" --size 1024 --steps 20 \
      --skip-text-encoder --json "$OUT/bench-notext.json" > "$OUT/bench-notext.log" 2>&1
    log "bench without the T5: exit $?; $(grep -E '^(peak GPU|denoising|transformer host traffic)' "$OUT/bench-notext.log" | tr '\n' ' ')"
  fi
  if [ "$(left)" -gt 60 ] && [ -f "$full/transformer/config.json" ] && [ -f "$full/vae/config.json" ]; then
    log "bench without the T5, in-graph denoising loop (20 steps at 1024 px, 5 steps per run)"
    timeout "$(( $(left) - 20 ))" node --expose-gc dist/bench/staged-recipe.js --dir "$full" --device "$DEVICE" --size 1024 --steps 20 \
      --steps-per-run 5 --skip-text-encoder --json "$OUT/bench-loop.json" > "$OUT/bench-loop.log" 2>&1
    log "bench in-graph loop: exit $?; $(grep -E '^(peak GPU|denoising|transformer host traffic)' "$OUT/bench-loop.log" | tr '\n' ' ')"
  fi
  # The T5 stage: ~9.5 GB of random bf16 weights, quantized to int8 on first load. Only with time to spare.
  if [ "$(left)" -gt 300 ]; then
    log "making the full-size T5 (bf16, random) and running the whole recipe with int8 (2 steps)"
    [ -f "$full/text_encoder/config.json" ] ||
      timeout "$(( $(left) - 200 ))" "$PY" tools/reference/make_fullsize.py "$full" --components text_encoder --dtype bfloat16 >> "$OUT/summary.txt" 2>&1
    timeout "$(( $(left) - 10 ))" node --expose-gc dist/bench/staged-recipe.js --dir "$full" --device "$DEVICE" --size 1024 --steps 2 \
      --quantize int8 --json "$OUT/bench-int8.json" > "$OUT/bench-int8.log" 2>&1
    log "whole recipe int8: exit $?; $(grep -E '^(peak GPU|denoising)' "$OUT/bench-int8.log" | tr '\n' ' ')"
  else
    log "skipped the T5 stage: $(left) s left"
  fi
  log "done"
}

cd "$ROOT"
for step in "$@"; do
  case "$step" in
    receive) receive || [ "$*" = receive ] || exit $? ;;
    run) run ;;
    *) echo "device-check: unknown step $step (receive, run)" >&2; exit 1 ;;
  esac
done
