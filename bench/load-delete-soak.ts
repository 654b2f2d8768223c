/**
 * Load/delete soak: N cycles of load (text encoder, transformer, VAE) → call() → delete all three → flush(), on the
 * tiny test pipeline. The target is < 2 % RSS growth over 1,000 cycles. RSS is read every cycles/100 cycles after the
 * warm-up; the bench prints start → end and two trend figures that one noisy reading cannot move (see soakTrend).
 * SOAK_READINGS=file.json writes the readings; SOAK_SMAPS=1 adds anonymous memory by kind of mapping (anonymousByKind).
 *
 * It runs under the notebook kernel's process settings (node flags and environment from kernel/src/install.ts:
 * the soak is what a kernel session does), by starting itself again with them; `--node-defaults` runs it under
 * plain `node --expose-gc` instead.
 *
 * Run: npm run build && node dist/bench/load-delete-soak.js [cycles=1000] [warmup=50] [--node-defaults]
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { kernelEnv, kernelNodeFlags } from "../kernel/src/install";
import { formatBytes, processMemory } from "../src/memory/probes";
import { PixArtSigmaPipeline } from "../src/pipeline/pixart-sigma";
import { fixturesDir } from "../test/helpers/paths";

/** One cycle: every model loaded, one small run, every model deleted and its memory flushed. */
export async function soakCycle(pipe: PixArtSigmaPipeline): Promise<void> {
  for (const name of ["textEncoder", "transformer", "vae"] as const) await pipe.load(name);
  const out = await pipe.call({ prompt: "a cat", numInferenceSteps: 1, useResolutionBinning: false, seed: 0, outputType: "tensor" });
  if (!out.tensor || !out.tensor.data.every(Number.isFinite)) throw new Error("the soak run returned no finite image");
  delete pipe.textEncoder;
  delete pipe.transformer;
  delete pipe.vae;
  await pipe.flush();
}

export async function openSoakPipeline(): Promise<PixArtSigmaPipeline> {
  return PixArtSigmaPipeline.fromPretrained(path.join(fixturesDir, "tiny-square", "pipeline"), { textEncoder: null, transformer: null, vae: null });
}

/** One reading of the process, taken every `every` cycles. */
export interface SoakReading {
  cycle: number;
  rss: number;
  rssAnon: number;
  rssFile: number;
  heapUsed: number;
  /** V8 heap committed on the main thread (heapUsed plus free space V8 keeps). */
  heapTotal: number;
  /** Anonymous resident bytes by kind of mapping (with SOAK_SMAPS=1; see anonymousByKind). */
  anonByKind?: Record<string, number>;
}

export interface SoakTrend {
  /** Lowest RSS among the first `window` readings and among the last `window` readings, and the growth between. */
  firstMin: number;
  lastMin: number;
  floorGrowth: number;
  /** Least-squares line through every reading: RSS growth it gives over the run, as a fraction of its start value. */
  fitGrowth: number;
}

/**
 * RSS is noisy (the allocator hands pages back and takes them again from cycle to cycle), so a soak is judged on
 * two figures that a single high or low reading cannot move much: the floor (the minimum over the first and over
 * the last `window` readings: memory that is never given back shows there) and a least-squares line over all
 * readings.
 */
export function soakTrend(readings: readonly SoakReading[], window: number): SoakTrend {
  if (readings.length < 2 * window) throw new RangeError(`soakTrend: ${readings.length} readings, expected at least ${2 * window}`);
  const firstMin = Math.min(...readings.slice(0, window).map((r) => r.rss));
  const lastMin = Math.min(...readings.slice(-window).map((r) => r.rss));
  const n = readings.length;
  const mx = readings.reduce((a, r) => a + r.cycle, 0) / n;
  const my = readings.reduce((a, r) => a + r.rss, 0) / n;
  const sxy = readings.reduce((a, r) => a + (r.cycle - mx) * (r.rss - my), 0);
  const sxx = readings.reduce((a, r) => a + (r.cycle - mx) ** 2, 0);
  const slope = sxy / sxx;
  const first = readings[0]!.cycle;
  const last = readings[n - 1]!.cycle;
  const fitStart = my + slope * (first - mx);
  return { firstMin, lastMin, floorGrowth: (lastMin - firstMin) / firstMin, fitGrowth: (slope * (last - first)) / fitStart };
}

export function readSoak(cycle: number, smaps = false): SoakReading {
  const m = processMemory();
  const r: SoakReading = { cycle, rss: m.rss, rssAnon: m.rssAnon, rssFile: m.rssFile, heapUsed: m.heapUsed, heapTotal: process.memoryUsage().heapTotal };
  if (smaps) r.anonByKind = anonymousByKind();
  return r;
}

/**
 * Anonymous resident bytes of this process by kind of mapping, from /proc/self/smaps (Linux, glibc, x86-64; a
 * diagnostic, by address and size): glibc's per-thread malloc arenas (mappings aligned to their 64 MiB reservation),
 * the main arena ([heap], brk), V8's heap pages (256 KiB chunks), and the rest (large malloc blocks served by mmap,
 * thread stacks).
 */
export function anonymousByKind(): Record<string, number> {
  const out: Record<string, number> = { "malloc thread arenas": 0, "malloc main arena": 0, "V8 pages": 0, other: 0 };
  let kind = "";
  for (const line of fs.readFileSync("/proc/self/smaps", "utf8").split("\n")) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) {
      const start = BigInt(`0x${h[1]}`);
      const size = Number(BigInt(`0x${h[2]}`) - start);
      if (h[3] === "[heap]") kind = "malloc main arena";
      else if (h[3]) kind = "";
      else if (start % (64n << 20n) === 0n && start >= 0x7f0000000000n) kind = "malloc thread arenas";
      else if (size === 256 << 10) kind = "V8 pages";
      else kind = "other";
      continue;
    }
    if (kind && line.startsWith("Anonymous:")) out[kind]! += Number(line.split(/\s+/)[1]) * 1024;
  }
  return out;
}

const pct = (f: number) => `${f >= 0 ? "+" : ""}${(f * 100).toFixed(2)} %`;

/** Marks the process started with the settings asked for, so it does not start itself again. */
const SETTINGS_APPLIED = "PIXART_SOAK_SETTINGS";

/** Starts this bench again with the kernel's node flags and environment (or plain node's), and returns its exit code. */
function rerunWithSettings(args: string[], nodeDefaults: boolean): number {
  const flags = nodeDefaults ? ["--expose-gc"] : kernelNodeFlags;
  const env = nodeDefaults ? {} : kernelEnv;
  const label = nodeDefaults ? "plain node" : "the kernel's settings";
  console.log(`under ${label}: node ${flags.join(" ")}${Object.entries(env).map(([k, v]) => `, ${k}=${v}`).join("")}`);
  const run = spawnSync(process.execPath, [...flags, __filename, ...args], { stdio: "inherit", env: { ...process.env, ...env, [SETTINGS_APPLIED]: "1" } });
  return run.status ?? 1;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const positional = args.filter((a) => !a.startsWith("--"));
  if (!process.env[SETTINGS_APPLIED]) return void (process.exitCode = rerunWithSettings(positional, args.includes("--node-defaults")));
  const cycles = Number(positional[0] ?? 1000);
  const warmup = Number(positional[1] ?? 50);
  const every = Math.max(1, Math.floor(cycles / 100));
  const window = 10;
  const pipe = await openSoakPipeline();
  const t0 = Date.now();
  for (let i = 0; i < warmup; i++) await soakCycle(pipe);
  const smaps = process.env.SOAK_SMAPS === "1";
  const readings: SoakReading[] = [readSoak(0, smaps)];
  console.log(`after ${warmup} warm-up cycles: RSS ${formatBytes(readings[0]!.rss)}; a reading every ${every} cycles` +
    (process.env.MALLOC_ARENA_MAX ? `, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX}` : ""));
  for (let i = 1; i <= cycles; i++) {
    await soakCycle(pipe);
    if (i % every === 0) {
      readings.push(readSoak(i, smaps));
      // Written as it goes, so a run that is stopped still leaves its readings.
      if (process.env.SOAK_READINGS) fs.writeFileSync(process.env.SOAK_READINGS, JSON.stringify(readings));
    }
    if (i % (every * 10) === 0) {
      const r = readings.at(-1)!;
      console.log(`cycle ${i}: RSS ${formatBytes(r.rss)} (anonymous ${formatBytes(r.rssAnon)}, file ${formatBytes(r.rssFile)}, ` +
        `JS heap used ${formatBytes(r.heapUsed)} of ${formatBytes(r.heapTotal)}; ${pipe.timeline.events.length} timeline events) ` +
        `${((Date.now() - t0) / 1000).toFixed(0)} s, load ${os.loadavg()[0]!.toFixed(1)}`);
      if (r.anonByKind) console.log(`  anonymous by kind: ${Object.entries(r.anonByKind).map(([k, v]) => `${k} ${formatBytes(v)}`).join(", ")}`);
    }
  }
  const start = readings[0]!;
  const end = readings.at(-1)!;
  const trend = soakTrend(readings, window);
  console.log(`${cycles} cycles (load → call → delete → flush), ${readings.length} readings of RSS, one every ${every} cycles:`);
  console.log(`  start → end:  ${formatBytes(start.rss)} → ${formatBytes(end.rss)} (${pct((end.rss - start.rss) / start.rss)}; ` +
    `anonymous ${formatBytes(start.rssAnon)} → ${formatBytes(end.rssAnon)}, JS heap ${formatBytes(start.heapUsed)} → ${formatBytes(end.heapUsed)})`);
  console.log(`  floor:        min of the first ${window} readings ${formatBytes(trend.firstMin)} → min of the last ${window} ` +
    `${formatBytes(trend.lastMin)} (${pct(trend.floorGrowth)})`);
  console.log(`  linear fit:   least squares over all ${readings.length} readings, growth over the run / fitted start: ${pct(trend.fitGrowth)}`);
  const ok = trend.floorGrowth < 0.02 && trend.fitGrowth < 0.02;
  console.log(`  target < 2 % (floor and fit): ${ok ? "met" : "NOT met"}; ${((Date.now() - t0) / 1000).toFixed(0)} s, load ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
