/**
 * How fast each way of writing one transformer Linear runs on this CPU in onnxruntime (MLAS): fp32 (weights
 * mapped in place or prepacked) and the int8/int4 formulations (DynamicQuantizeMatMul with int8 or uint8 weights,
 * prepacked or not, with onnxruntime's x64 quant precision mode on or off; MatMulNBits 8- and 4-bit at
 * accuracy_level 4). One node per graph, the transformer step's shapes (M = CFG batch 2 × image tokens), the
 * variants interleaved round by round so machine load hits all alike; prints the best and median time and GFLOP/s
 * (2·M·K·N per call) of each, and each variant's max |Δ| against the first one listed (fp32 unless `--only` drops it). Each call's CPU time
 * (process.cpuUsage, all threads) is printed too: with `--threads 1` (the default) it is the kernel's own work,
 * far less disturbed by other processes than wall time on a loaded machine (with more threads it includes
 * onnxruntime's spin-waiting).
 *
 * Run: npm run build && node dist/bench/gemm-formulations.js [--m 2048] [--reps 5] [--threads 1] [--only a,b] [--shape ff1]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as ort from "onnxruntime-node";
import { openWeights } from "../src/io/checkpoint";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors-writer";
import type { WeightSource } from "../src/io/types";
import { float, GraphBuilder, type Value } from "../src/onnx/graph";
import { quantizeInt4, quantizeInt8 } from "../src/models/quantize";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** The Linears of a PixArt-Σ block (width 1152, feed-forward 4608) as [K = in, N = out]. */
const SHAPES: [string, number, number][] = [["1152→1152 (q/k/v/out)", 1152, 1152], ["1152→4608 (ff1)", 1152, 4608], ["4608→1152 (ff2)", 4608, 1152]];

/** 8-bit blocks for MatMulNBits: [N, K/block, block] uint8, symmetric around zero point 128, scale max|w|/127. */
function quantizeNBits8(w: Float32Array, n: number, k: number, block: number): { b: Uint8Array; scales: Float32Array; zp: Uint8Array } {
  const blocks = Math.ceil(k / block);
  const b = new Uint8Array(n * blocks * block).fill(128);
  const scales = new Float32Array(n * blocks);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < blocks; j++) {
      let max = 0;
      for (let i = j * block; i < Math.min(k, (j + 1) * block); i++) max = Math.max(max, Math.abs(w[r * k + i]));
      const s = Math.fround(max / 127);
      scales[r * blocks + j] = s;
      for (let i = j * block; i < Math.min(k, (j + 1) * block); i++) b[(r * blocks + j) * block + (i - j * block)] = Math.round(s ? w[r * k + i] / s : 0) + 128;
    }
  }
  return { b, scales, zp: new Uint8Array(n * blocks).fill(128) };
}

interface Variant {
  name: string;
  build(g: GraphBuilder, x: Value, tag: string, k: number, n: number): Value;
  prepack: boolean;
  /** onnxruntime's session.x64quantprecision (our sessions set "1"). */
  precision?: "0" | "1";
  /** Takes the activations already quantized (uint8) and returns int32: the int8 GEMM alone. */
  integerOnly?: boolean;
}

const fused = (g: GraphBuilder, x: Value, tag: string) => g.op("FusedMatMul", [x, g.rawWeight(`${tag}.w`)], { transB: 1, alpha: float(1) }, { domain: "com.microsoft" });
const dqmm = (g: GraphBuilder, x: Value, tag: string, u8: boolean, perTensor = false) =>
  g.op("DynamicQuantizeMatMul", u8 ? [x, g.rawWeight(`${tag}.u8`), g.rawWeight(`${tag}.scale`), g.rawWeight(`${tag}.zp128`)]
    : perTensor ? [x, g.rawWeight(`${tag}.s8t`), g.rawWeight(`${tag}.scalet`)] : [x, g.rawWeight(`${tag}.s8`), g.rawWeight(`${tag}.scale`)], {}, { domain: "com.microsoft" });
const nbits = (g: GraphBuilder, x: Value, tag: string, k: number, n: number, bits: 4 | 8, block: number) =>
  g.op("MatMulNBits", [x, g.rawWeight(`${tag}.nb${bits}_${block}`), g.rawWeight(`${tag}.nb${bits}_${block}.scale`), g.rawWeight(`${tag}.nb${bits}_${block}.zp`)],
    { K: k, N: n, bits, block_size: block, accuracy_level: 4 }, { domain: "com.microsoft" });

const VARIANTS: Variant[] = [
  { name: "fp32 mapped (ours)", build: (g, x, t) => fused(g, x, t), prepack: false },
  { name: "fp32 prepacked", build: (g, x, t) => fused(g, x, t), prepack: true },
  { name: "dqmm s8 mapped prec1", build: (g, x, t) => dqmm(g, x, t, false), prepack: false, precision: "1" },
  { name: "dqmm s8 mapped prec0", build: (g, x, t) => dqmm(g, x, t, false), prepack: false, precision: "0" },
  { name: "dqmm s8 prepacked prec1", build: (g, x, t) => dqmm(g, x, t, false), prepack: true, precision: "1" },
  { name: "dqmm s8 prepacked prec0 (ours)", build: (g, x, t) => dqmm(g, x, t, false), prepack: true, precision: "0" },
  { name: "dqmm s8 per-tensor prec0", build: (g, x, t) => dqmm(g, x, t, false, true), prepack: false, precision: "0" },
  { name: "dqmm u8 mapped", build: (g, x, t) => dqmm(g, x, t, true), prepack: false, precision: "1" },
  { name: "dqmm u8 prepacked", build: (g, x, t) => dqmm(g, x, t, true), prepack: true, precision: "1" },
  { name: "matmulinteger u8s8 alone", build: (g, x, t) => g.op("MatMulInteger", [x, g.rawWeight(`${t}.s8`)]), prepack: true, precision: "0", integerOnly: true },
  { name: "nbits8 b32 acc4", build: (g, x, t, k, n) => nbits(g, x, t, k, n, 8, 32), prepack: true },
  { name: "nbits8 b128 acc4", build: (g, x, t, k, n) => nbits(g, x, t, k, n, 8, 128), prepack: true },
  { name: "nbits4 b32 acc4", build: (g, x, t, k, n) => nbits(g, x, t, k, n, 4, 32), prepack: true },
];

function tensorsFor(tag: string, k: number, n: number): TensorToWrite[] {
  const w = Float32Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.7919 + k) * 0.05);
  const q8 = quantizeInt8(w, n, k);
  const out: TensorToWrite[] = [
    { name: `${tag}.w`, dtype: "F32", shape: [n, k], data: w },
    { name: `${tag}.s8`, dtype: "I8", shape: [k, n], data: q8.q },
    { name: `${tag}.u8`, dtype: "U8", shape: [k, n], data: Uint8Array.from(q8.q, (v) => v + 128) },
    { name: `${tag}.scale`, dtype: "F32", shape: [n], data: q8.scales },
    { name: `${tag}.zp128`, dtype: "U8", shape: [n], data: new Uint8Array(n).fill(128) },
  ];
  // One scale for the whole weight: the largest row scale.
  const scale = Math.max(...q8.scales);
  out.push({ name: `${tag}.s8t`, dtype: "I8", shape: [k, n], data: Int8Array.from({ length: k * n }, (_, i) => Math.round(w[(i % n) * k + Math.floor(i / n)] / scale)) },
    { name: `${tag}.scalet`, dtype: "F32", shape: [], data: Float32Array.of(scale) });
  for (const block of [32, 128]) {
    const nb = quantizeNBits8(w, n, k, block);
    const blocks = Math.ceil(k / block);
    out.push({ name: `${tag}.nb8_${block}`, dtype: "U8", shape: [n, blocks, block], data: nb.b },
      { name: `${tag}.nb8_${block}.scale`, dtype: "F32", shape: [n * blocks], data: nb.scales },
      { name: `${tag}.nb8_${block}.zp`, dtype: "U8", shape: [n * blocks], data: nb.zp });
  }
  const q4 = quantizeInt4(w, n, k);
  out.push({ name: `${tag}.nb4_32`, dtype: "U8", shape: [n, Math.ceil(k / 32), 16], data: q4.b },
    { name: `${tag}.nb4_32.scale`, dtype: "F32", shape: [q4.scales.length], data: q4.scales },
    { name: `${tag}.nb4_32.zp`, dtype: "U8", shape: [q4.zeroPoints.length], data: q4.zeroPoints });
  return out;
}

async function session(weights: WeightSource, v: Variant, tag: string, m: number, k: number, n: number, threads: number): Promise<ort.InferenceSession> {
  const g = new GraphBuilder(v.name, weights);
  const x = g.input("x", v.integerOnly ? "uint8" : "float32", [m, k]);
  g.output(v.build(g, x, tag, k, n), "y", v.integerOnly ? "int32" : "float32", [m, n]);
  const built = g.build();
  const sessionOpts: Record<string, string> = { model_external_initializers_file_folder_path: built.externalDataFolder! };
  if (!v.prepack) sessionOpts.disable_prepacking = "1";
  if (v.precision) sessionOpts.x64quantprecision = v.precision;
  return ort.InferenceSession.create(built.bytes, { intraOpNumThreads: threads, enableCpuMemArena: true, logSeverityLevel: 3, extra: { session: sessionOpts } });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const m = Number(arg("m", "2048"));
  const reps = Number(arg("reps", "5"));
  const threads = Number(arg("threads", "1"));
  const only = arg("only", "");
  const variants = only ? VARIANTS.filter((v) => only.split(",").some((o) => v.name.includes(o))) : VARIANTS;
  const shapes = SHAPES.filter(([label]) => !arg("shape", "") || label.includes(arg("shape", "")));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-gemm-"));
  try {
    await writeSafetensors(path.join(dir, "model.safetensors"), shapes.flatMap(([, k, n], i) => tensorsFor(`s${i}`, k, n)));
    const weights = await openWeights(dir);
    console.log(`M = ${m}, ${threads} threads, ${reps} interleaved rounds after one warm-up; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    for (const [i, [label, k, n]] of shapes.entries()) {
      const x = new ort.Tensor("float32", Float32Array.from({ length: m * k }, (_, j) => Math.sin(j * 0.37) * (1 + (j % 7))), [m, k]);
      const sessions: (ort.InferenceSession | Error)[] = [];
      for (const v of variants) sessions.push(await session(weights, v, `s${i}`, m, k, n, threads).catch((e: Error) => e));
      const xq = new ort.Tensor("uint8", Uint8Array.from(x.data as Float32Array, (v) => Math.max(0, Math.min(255, Math.round(v * 16 + 128)))), [m, k]);
      const feed = (v: Variant) => ({ x: v.integerOnly ? xq : x });
      const ref = sessions[0] instanceof Error ? undefined : ((await sessions[0].run({ x })).y.data as Float32Array);
      const diffs = await Promise.all(sessions.map(async (s) => {
        if (s instanceof Error) return NaN;
        const v = variants[sessions.indexOf(s)];
        const y = (await s.run(feed(v))).y.data as Float32Array; // also the warm-up call
        if (!ref || v.integerOnly) return NaN;
        let d = 0;
        for (let j = 0; j < y.length; j++) d = Math.max(d, Math.abs(y[j] - ref[j]));
        return d;
      }));
      const times = variants.map(() => [] as number[]);
      const cpu = variants.map(() => [] as number[]);
      for (let r = 0; r < reps; r++) {
        for (const [j, s] of sessions.entries()) {
          if (s instanceof Error) continue;
          const t0 = performance.now();
          const c0 = process.cpuUsage();
          await s.run(feed(variants[j]));
          const c = process.cpuUsage(c0);
          times[j].push(performance.now() - t0);
          cpu[j].push((c.user + c.system) / 1000);
        }
      }
      const flop = 2 * m * k * n;
      console.log(`\n${label}: [${m}, ${k}] × [${k}, ${n}], ${(flop / 1e9).toFixed(1)} GFLOP per call; load average ${os.loadavg()[0].toFixed(1)}`);
      for (const [j, v] of variants.entries()) {
        const s = sessions[j];
        if (s instanceof Error) {
          console.log(`  ${v.name.padEnd(24)} unavailable: ${s.message.split("\n")[0].slice(0, 140)}`);
          continue;
        }
        const best = Math.min(...times[j]);
        const bestCpu = Math.min(...cpu[j]);
        console.log(`  ${v.name.padEnd(24)} wall best ${best.toFixed(1).padStart(7)} ms, median ${median(times[j]).toFixed(1).padStart(7)} ms (${(flop / best / 1e6).toFixed(0).padStart(4)} GFLOP/s); ` +
          `CPU best ${bestCpu.toFixed(1).padStart(7)} ms, median ${median(cpu[j]).toFixed(1).padStart(7)} ms (${(flop / bestCpu / 1e6).toFixed(0).padStart(4)} GFLOP/s per CPU-s); max |Δ| vs ${variants[0].name} ${diffs[j].toExponential(1)}`);
      }
      for (const s of sessions) if (!(s instanceof Error)) await s.release();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
