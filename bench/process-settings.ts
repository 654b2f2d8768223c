/**
 * What the kernel's process settings (kernel/src/install.ts: kernelNodeFlags and kernelEnv, e.g. a fixed V8
 * young generation and glibc's malloc arena count) cost in speed. Runs the same work in child processes started
 * with node's defaults and with the kernel's settings, alternating child by child so machine load hits both
 * alike: each child loads the full-size transformer and VAE (worker-thread sessions, as in the pipeline), runs one
 * warm-up call of each, then `--calls` timed transformer steps (CFG batch 2, 300-token prompt of 20 valid tokens)
 * and VAE decodes at `--size` px, and reports wall and CPU time per call.
 *
 *   .venv/bin/python tools/reference/make_fullsize.py .bench/fullsize --components transformer,vae
 *   npm run build && node --expose-gc dist/bench/process-settings.js [--dir .bench/fullsize] [--size 256]
 *        [--children 2] [--calls 3] [--threads 2]
 */
import { spawnSync } from "child_process";
import * as os from "os";
import * as path from "path";
import { parseArgs } from "util";
import { kernelEnv, kernelNodeFlags } from "../kernel/src/install";
import { processMemory } from "../src/memory/probes";
import { AutoencoderKL } from "../src/models/autoencoder-kl";
import { PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import { TorchGenerator } from "../src/random";
import { repoRoot } from "../test/helpers/paths";

interface ChildResult {
  transformer: { wall: number; cpu: number }[];
  vae: { wall: number; cpu: number }[];
  rss: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timedCall(fn: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1e6 };
}

/** The child: the work itself, its figures as one JSON line on stdout. */
async function child(dir: string, size: number, calls: number, threads: number): Promise<void> {
  const session = { intraOpNumThreads: threads };
  const transformer = await PixArtTransformer2DModel.fromPretrained(path.join(dir, "transformer"), session);
  const vae = await AutoencoderKL.fromPretrained(path.join(dir, "vae"), session);
  const gen = new TorchGenerator(0);
  const lat = size / 8;
  const seq = 300;
  const caption = transformer.config.captionChannels ?? transformer.config.crossAttentionDim;
  const mask = new BigInt64Array(2 * seq);
  for (let i = 0; i < 20; i++) mask[i] = 1n;
  mask[seq] = 1n;
  const step = () => transformer.forward({
    hiddenStates: { data: gen.randn([2, 4, lat, lat]), dims: [2, 4, lat, lat] },
    encoderHiddenStates: { data: gen.randn([2, seq, caption]), dims: [2, seq, caption] },
    encoderAttentionMask: { data: mask, dims: [2, seq] },
    timestep: BigInt64Array.of(500n, 500n),
  });
  const decode = () => vae.decode({ data: gen.randn([1, 4, lat, lat]), dims: [1, 4, lat, lat] });
  const result: ChildResult = { transformer: [], vae: [], rss: 0 };
  await step();
  await decode();
  for (let i = 0; i < calls; i++) {
    result.transformer.push(await timedCall(step));
    result.vae.push(await timedCall(decode));
  }
  result.rss = processMemory().rss;
  await transformer.release();
  await vae.release();
  console.log(JSON.stringify(result));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    dir: { type: "string" }, size: { type: "string" }, children: { type: "string" }, calls: { type: "string" },
    threads: { type: "string" }, child: { type: "boolean", default: false },
  } });
  const dir = path.resolve(values.dir ?? path.join(repoRoot(), ".bench", "fullsize"));
  const size = Number(values.size ?? 256);
  const calls = Number(values.calls ?? 3);
  const threads = Number(values.threads ?? 2);
  if (values.child) return child(dir, size, calls, threads);

  const settings = {
    "node defaults": { flags: ["--expose-gc"], env: {} },
    "kernel settings": { flags: kernelNodeFlags, env: kernelEnv },
  };
  console.log(`kernel settings: node ${kernelNodeFlags.join(" ")}; env ${Object.entries(kernelEnv).map(([k, v]) => `${k}=${v}`).join(" ") || "(none)"}`);
  const results = new Map<string, ChildResult[]>(Object.keys(settings).map((k) => [k, []]));
  const children = Number(values.children ?? 2);
  for (let i = 0; i < children; i++) {
    for (const [label, s] of Object.entries(settings)) {
      const args = [...s.flags, __filename, "--child", "--dir", dir, "--size", String(size), "--calls", String(calls), "--threads", String(threads)];
      const run = spawnSync(process.execPath, args, { env: { ...process.env, ...s.env }, encoding: "utf8", maxBuffer: 1 << 24 });
      if (run.status !== 0) throw new Error(`${label} child failed (${run.status}): ${run.stderr.slice(-2000)}`);
      const r = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as ChildResult;
      results.get(label)!.push(r);
      const f = (xs: { wall: number; cpu: number }[]) => xs.map((x) => `${x.wall.toFixed(2)} s (${x.cpu.toFixed(2)} CPU-s)`).join(", ");
      console.log(`${label}, child ${i + 1}: transformer ${f(r.transformer)}; vae ${f(r.vae)}; load ${os.loadavg()[0]!.toFixed(1)}`);
    }
  }
  console.log(`\n${size} px, ${children} children × ${calls} calls each, ${threads} threads; medians over all calls:`);
  console.log("| settings | transformer step wall | CPU | VAE decode wall | CPU | RSS at the end |");
  console.log("|---|---|---|---|---|---|");
  for (const [label, rs] of results) {
    const all = (k: "transformer" | "vae", f: "wall" | "cpu") => median(rs.flatMap((r) => r[k].map((x) => x[f]))).toFixed(2);
    console.log(`| ${label} | ${all("transformer", "wall")} s | ${all("transformer", "cpu")} s | ${all("vae", "wall")} s | ${all("vae", "cpu")} s | ` +
      `${(median(rs.map((r) => r.rss)) / 2 ** 20).toFixed(0)} MiB |`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
