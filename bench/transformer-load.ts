/**
 * Loading a full-size PixArt-Σ transformer: graph build time, session create time, and how much the process
 * grows before the first run (the weights must be memory-mapped, not copied).
 *
 * Make the checkpoint first (2.4 GB, random weights, never committed):
 *   .venv/bin/python tools/reference/make_fullsize.py /tmp/pixart-full --components transformer
 * Run: npm run build && node --expose-gc dist/bench/transformer-load.js [/tmp/pixart-full/transformer] [--run] [--prepack]
 * With --run it also runs one denoising call (CFG batch 2) at 256 px and reports its time and memory. With
 * --prepack the sessions prepack the MatMul weights (SessionConfig.prepack): an anonymous copy instead of mapped pages.
 */
import * as fs from "fs";
import * as path from "path";
import { performance } from "perf_hooks";
import { openWeights } from "../src/io/checkpoint";
import { readJsonObject } from "../src/io/json";
import { formatBytes, processMemory, type ProcessMemory } from "../src/memory/probes";
import { buildPixArtTransformerGraph, parsePixArtTransformerConfig, PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import { createSession } from "../src/onnx/session";

function delta(after: ProcessMemory, before: ProcessMemory): string {
  return `RSS ${formatBytes(after.rss - before.rss)} (anon ${formatBytes(after.rssAnon - before.rssAnon)}, file ${formatBytes(after.rssFile - before.rssFile)})`;
}

async function main(): Promise<void> {
  const dir = process.argv.find((a, i) => i >= 2 && !a.startsWith("--")) ?? "/tmp/pixart-full/transformer";
  if (!fs.existsSync(dir)) {
    console.error(`${dir} not found. Create it with:\n  .venv/bin/python tools/reference/make_fullsize.py /tmp/pixart-full --components transformer`);
    process.exit(2);
  }
  global.gc?.();
  const m0 = processMemory();
  let t = performance.now();
  const configFile = path.join(dir, "config.json");
  const config = parsePixArtTransformerConfig(await readJsonObject(configFile), configFile);
  const built = buildPixArtTransformerGraph(config, await openWeights(dir));
  const buildMs = performance.now() - t;
  const m1 = processMemory();
  t = performance.now();
  const prepack = process.argv.includes("--prepack");
  const session = await createSession(built, { prepack });
  const createMs = performance.now() - t;
  global.gc?.();
  const m2 = processMemory();
  const weights = Object.entries(built.weightBytes).map(([k, v]) => `${k} ${formatBytes(v ?? 0)}`).join(", ");
  console.log(`transformer: ${config.numLayers} layers, width ${config.innerDim}; weights ${weights}; graph ${formatBytes(built.bytes.length)}`);
  console.log(`open + build graph: ${buildMs.toFixed(0)} ms, ${delta(m1, m0)}`);
  console.log(`session create:     ${createMs.toFixed(0)} ms, ${delta(m2, m1)}`);
  console.log(`before first run:   ${delta(m2, m0)} since start (RSS now ${formatBytes(m2.rss)})`);
  await session.release();
  global.gc?.();

  // The way the pipeline loads it: config + weights + graph + a session in its own worker thread.
  const m3 = processMemory();
  t = performance.now();
  const viaWorker = await PixArtTransformer2DModel.fromPretrained(dir, { prepack });
  const workerMs = performance.now() - t;
  console.log(`fromPretrained (worker thread): ${workerMs.toFixed(0)} ms, ${delta(processMemory(), m3)}`);
  await viaWorker.release();

  if (process.argv.includes("--run")) {
    const model = await PixArtTransformer2DModel.fromPretrained(dir, { prepack });
    const [b, h, w, len] = [2, 32, 32, 300];
    const mask = new BigInt64Array(b * len);
    mask.fill(1n, 0, 10);
    mask.fill(1n, len, len + 20);
    t = performance.now();
    await model.forward({
      hiddenStates: { data: new Float32Array(b * 4 * h * w).fill(0.1), dims: [b, 4, h, w] },
      encoderHiddenStates: { data: new Float32Array(b * len * 4096).fill(0.01), dims: [b, len, 4096] },
      encoderAttentionMask: { data: mask, dims: [b, len] },
      timestep: [999, 999],
    });
    const runMs = performance.now() - t;
    const m3 = processMemory();
    console.log(`one call at 256 px (batch 2): ${runMs.toFixed(0)} ms; RSS ${formatBytes(m3.rss)}, peak ${formatBytes(m3.rssPeak)}`);
    await model.release();
    global.gc?.();
    console.log(`after release: RSS ${formatBytes(processMemory().rss)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
