/**
 * What the load-time weight scan (`checkWeights`, src/io/weight-scan.ts) costs: load time of a component with and
 * without it, from a cold page cache (the file's pages dropped first) and a warm one, the process's RSS after the
 * load, and how much of the weights file is in the page cache after it (fincore). Runs alternate between the two
 * settings so that load on a shared machine hits both alike. With --run, a cold load is followed by the first
 * run (a 128 px VAE decode, or one transformer step at 256 px), where the unscanned load pays its page faults.
 *
 * Make the checkpoints first (random weights, never committed):
 *   .venv/bin/python tools/reference/make_fullsize.py .bench/fullsize --components transformer vae
 * Run: npm run build && node --expose-gc dist/bench/weight-check.js .bench/fullsize/transformer .bench/fullsize/vae [--reps 2] [--run]
 */
import { execFileSync } from "child_process";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { openWeights } from "../src/io/checkpoint";
import { checkFiniteWeights } from "../src/io/weight-scan";
import { formatBytes, processMemory } from "../src/memory/probes";
import { AutoencoderKL } from "../src/models/autoencoder-kl";
import { PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import type { OrtModel } from "../src/models/model";

/** Drops the file's pages from the page cache (GNU dd: nocache with count=0 covers the whole file). */
function dropCache(file: string): void {
  execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"]);
}

/** Bytes of `file` in the page cache. */
function cachedBytes(file: string): number {
  return Number(execFileSync("fincore", ["--bytes", "--noheadings", "--output", "RES", file], { encoding: "utf8" }).trim());
}

const loadAvg = (): string => os.loadavg().map((l) => l.toFixed(1)).join(" ");

async function loadModel(dir: string, checkWeights: boolean): Promise<OrtModel> {
  return path.basename(dir) === "vae" ? AutoencoderKL.fromPretrained(dir, { checkWeights }) : PixArtTransformer2DModel.fromPretrained(dir, { checkWeights });
}

async function firstRun(model: OrtModel): Promise<void> {
  if (model instanceof AutoencoderKL) {
    await model.decode({ data: new Float32Array(4 * 16 * 16).fill(0.1), dims: [1, 4, 16, 16] }); // 128 px: every weight, little compute
  } else if (model instanceof PixArtTransformer2DModel) {
    const len = 120;
    await model.forward({
      hiddenStates: { data: new Float32Array(4 * 32 * 32).fill(0.1), dims: [1, 4, 32, 32] },
      encoderHiddenStates: { data: new Float32Array(len * 4096).fill(0.01), dims: [1, len, 4096] },
      encoderAttentionMask: { data: new BigInt64Array(len).fill(1n), dims: [1, len] },
      timestep: [999],
    });
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const reps = Number(args[args.indexOf("--reps") + 1] ?? 2) || 2;
  const dirs = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--reps");
  for (const dir of dirs) {
    const weights = await openWeights(dir);
    const file = weights.files[0]!;
    const infos = weights.names().map((n) => weights.get(n));
    console.log(`\n${dir}: ${formatBytes(infos.reduce((a, t) => a + t.byteLength, 0))} of weights`);
    for (const cache of ["cold", "warm"] as const) {
      // The scan alone, then loads with and without it, alternating which goes first.
      for (let r = 0; r < reps; r++) {
        if (cache === "cold") dropCache(file);
        const s = await checkFiniteWeights(infos);
        console.log(`  ${cache} scan only: ${s.milliseconds.toFixed(0)} ms for ${formatBytes(s.bytes)} (${(s.bytes / 1e6 / s.milliseconds).toFixed(2)} GB/s); load avg ${loadAvg()}`);
        for (const checkWeights of r % 2 ? [false, true] : [true, false]) {
          if (cache === "cold") dropCache(file); // warm: the scan above left the file in the cache
          global.gc?.();
          const m0 = processMemory();
          const t = performance.now();
          const model = await loadModel(dir, checkWeights);
          const ms = performance.now() - t;
          const m1 = processMemory();
          const line = `  ${cache} load checkWeights=${String(checkWeights).padEnd(5)}: ${ms.toFixed(0)} ms; RSS +${formatBytes(m1.rss - m0.rss)} ` +
            `(file-backed +${formatBytes(m1.rssFile - m0.rssFile)}); page cache holds ${formatBytes(cachedBytes(file))} of the file`;
          if (args.includes("--run") && cache === "cold") {
            const t2 = performance.now();
            await firstRun(model);
            const runMs = performance.now() - t2;
            console.log(`${line}; first run ${runMs.toFixed(0)} ms, load + first run ${(ms + runMs).toFixed(0)} ms; load avg ${loadAvg()}`);
          } else {
            console.log(`${line}; load avg ${loadAvg()}`);
          }
          await model.release();
        }
      }
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
