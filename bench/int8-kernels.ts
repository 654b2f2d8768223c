/**
 * Whether int8 pays for the two parts of the work that issue 15's int8 option leaves in fp32: the VAE's 3×3
 * convolutions and the transformer's self-attention. One op chain per graph, onnxruntime's CPU kernels, the
 * variants interleaved round by round; prints the best and median wall time of each and its max |Δ| relative to
 * the largest fp32 output.
 *
 * conv (SDXL VAE decoder shapes, batch 1, 3×3, padding 1):
 *   - fp32 Conv (what autoencoder-kl.ts runs);
 *   - dynamic int8: DynamicQuantizeLinear(x) → ConvInteger with per-output-channel symmetric weights (int8, or
 *     uint8 with zero point 128) → Cast → Mul(scales) → Add(bias): what a weight-only int8 VAE with run-time
 *     activation scales would be, as the transformer's int8 option is;
 *   - static int8: QuantizeLinear(x) → QLinearConv (uint8 activations, int8 per-channel weights, uint8 output at a
 *     fixed scale) → DequantizeLinear. Needs every conv's input and output range known in advance (calibration);
 *     here the ranges are taken from the fp32 run on the same input, the best case such a scheme could have.
 * attention (a 1024 px block's self-attention: CFG batch 2, 16 heads, 4096 tokens, head dim 72):
 *   - com.microsoft MultiHeadAttention (MLAS flash attention, fp32; what the transformer graph runs);
 *   - an unfused int8 chain over chunks of 4 heads: MatMulInteger(Q, Kᵀ) on dynamically quantized Q and K →
 *     scale → Softmax → QuantizeLinear(P, 1/255) → MatMulInteger with quantized V → scale;
 *   - Softmax alone over the materialised fp32 scores (the part of any unfused formulation that no int8 GEMM
 *     removes).
 *
 * Run: npm run build && node dist/bench/int8-kernels.js [--part conv|attention] [--reps 3] [--threads 2]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as ort from "onnxruntime-node";
import { openWeights } from "../src/io/checkpoint";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors-writer";
import type { WeightSource } from "../src/io/types";
import { GraphBuilder, type Value } from "../src/onnx/graph";
import { OnnxType } from "../src/onnx/proto";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
/** Deterministic noise in [-amp, amp) (a sine hash: no RNG state to carry between variants). */
const wave = (n: number, seed: number, amp = 1) => Float32Array.from({ length: n }, (_, i) => {
  const h = Math.sin(i * 12.9898 + seed * 78.233) * 43758.5453;
  return (h - Math.floor(h) - 0.5) * 2 * amp;
});

interface Ranges {
  inMax: number;
  outMax: number;
}

interface Chain {
  name: string;
  /** Builds the chain from the graph input "x" to the output "y"; `ranges` are the first chain's (fp32) max |x| and max |y|. */
  build(g: GraphBuilder, x: Value, ranges: Ranges): Value;
}

interface Case {
  label: string;
  /** Multiply-adds × 2 per call, for the rate column (0: none printed). */
  flop: number;
  dims: number[];
  input: ort.Tensor;
  chains: Chain[];
  /** Calls of the graph per reported time (a chunk measured once stands for this many). */
  repeat?: number;
}

async function session(weights: WeightSource, chain: Chain, dims: number[], threads: number, ranges: Ranges): Promise<ort.InferenceSession> {
  const g = new GraphBuilder(chain.name, weights);
  g.output(chain.build(g, g.input("x", "float32", dims), ranges), "y", "float32", ["d0"]);
  const built = g.build({ "": 21, "com.microsoft": 1 });
  return ort.InferenceSession.create(built.bytes, {
    intraOpNumThreads: threads, enableCpuMemArena: false, logSeverityLevel: 3,
    extra: { session: { x64quantprecision: "0", ...(built.externalDataFolder ? { model_external_initializers_file_folder_path: built.externalDataFolder } : {}) } },
  });
}

// ---- conv ----

const CONV_SHAPES: [number, number][] = [[512, 64], [512, 128], [512, 256], [256, 512], [128, 512]];

function convTensors(c: number): TensorToWrite[] {
  const k = c * 9;
  const w = wave(c * k, 0.61, 1 / Math.sqrt(k));
  const scales = new Float32Array(c);
  const q = new Int8Array(c * k);
  for (let o = 0; o < c; o++) {
    let max = 0;
    for (let i = 0; i < k; i++) max = Math.max(max, Math.abs(w[o * k + i]));
    scales[o] = max / 127;
    for (let i = 0; i < k; i++) q[o * k + i] = Math.round(w[o * k + i] / scales[o]);
  }
  const t = `c${c}`;
  return [
    { name: `${t}.w`, dtype: "F32", shape: [c, c, 3, 3], data: w },
    { name: `${t}.b`, dtype: "F32", shape: [c], data: wave(c, 0.9, 0.1) },
    { name: `${t}.s8`, dtype: "I8", shape: [c, c, 3, 3], data: q },
    { name: `${t}.u8`, dtype: "U8", shape: [c, c, 3, 3], data: Uint8Array.from(q, (v) => v + 128) },
    { name: `${t}.scale`, dtype: "F32", shape: [c], data: scales },
    { name: `${t}.zp0`, dtype: "I8", shape: [c], data: new Int8Array(c) },
  ];
}

const SCALARS: TensorToWrite[] = [
  { name: "u8.0", dtype: "U8", shape: [], data: Uint8Array.of(0) },
  { name: "u8.128", dtype: "U8", shape: [], data: Uint8Array.of(128) },
  { name: "i8.0", dtype: "I8", shape: [], data: Int8Array.of(0) },
];

function convChains(c: number): Chain[] {
  const t = `c${c}`;
  const pads = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };
  const perChannel = (g: GraphBuilder, name: string) => g.op("Reshape", [g.rawWeight(name), g.constI64([1, c, 1, 1])]);
  const dynamic = (u8: boolean): Chain => ({
    name: `dynamic int8, ${u8 ? "uint8" : "int8"} weights (ConvInteger)`,
    build: (g, x) => {
      const [xq, xs, xz] = g.opN("DynamicQuantizeLinear", [x], {}, { outputs: 3 });
      const acc = g.op("ConvInteger", [xq, g.rawWeight(`${t}.${u8 ? "u8" : "s8"}`), xz, g.rawWeight(u8 ? "u8.128" : "i8.0")], pads);
      const scale = g.op("Mul", [perChannel(g, `${t}.scale`), xs]);
      return g.op("Add", [g.op("Mul", [g.op("Cast", [acc], { to: OnnxType.FLOAT }), scale]), perChannel(g, `${t}.b`)]);
    },
  });
  return [
    { name: "fp32 Conv (ours)", build: (g, x) => g.op("Conv", [x, g.rawWeight(`${t}.w`), g.rawWeight(`${t}.b`)], pads) },
    dynamic(true),
    dynamic(false),
    {
      name: "static int8 (QLinearConv, calibrated)",
      build: (g, x, ranges) => {
        // Ranges "calibrated" on this very input (the fp32 run's max |x| and max |y|): the best case for a static scheme.
        const xs = g.constF32(ranges.inMax / 127);
        const ys = g.constF32(ranges.outMax / 127);
        const zp = g.rawWeight("u8.128");
        // QLinearConv's bias is int32 at scale x_scale · w_scale (constant-folded at session creation).
        const b32 = g.op("Cast", [g.op("Round", [g.op("Div", [g.rawWeight(`${t}.b`), g.op("Mul", [g.rawWeight(`${t}.scale`), xs])])])], { to: OnnxType.INT32 });
        const yq = g.op("QLinearConv", [g.op("QuantizeLinear", [x, xs, zp]), xs, zp, g.rawWeight(`${t}.s8`), g.rawWeight(`${t}.scale`), g.rawWeight(`${t}.zp0`), ys, zp, b32], pads);
        return g.op("DequantizeLinear", [yq, ys, zp]);
      },
    },
  ];
}

function convCases(): Case[] {
  return CONV_SHAPES.map(([c, hw]) => ({
    label: `conv ${c}→${c} 3×3 at ${hw}×${hw}`,
    flop: 2 * c * c * 9 * hw * hw,
    dims: [1, c, hw, hw],
    input: new ort.Tensor("float32", wave(c * hw * hw, 0.37), [1, c, hw, hw]),
    chains: convChains(c),
  }));
}

// ---- attention ----

const B = 2, H = 16, S = 4096, D = 72, CHUNK = 4;

function attentionCases(): Case[] {
  const width = H * D;
  const qkv = wave(3 * B * S * width, 0.113, 2);
  // One input [3, B, S, H·D] (q, k, v) keeps every chain a single-input graph.
  const input = new ort.Tensor("float32", qkv, [3, B, S, width]);
  const part = (g: GraphBuilder, x: Value, i: number) => g.op("Squeeze", [g.op("Slice", [x, g.constI64([i]), g.constI64([i + 1]), g.constI64([0])]), g.constI64([0])]);
  const heads = (g: GraphBuilder, x: Value, perm: number[]) => g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [x, g.constI64([B, S, H, D])])], { perm }), g.constI64(perm[2] === 3 ? [B * H, D, S] : [B * H, S, D])]);
  const mha: Chain = {
    name: "MultiHeadAttention fp32 (flash, ours)",
    build: (g, x) => g.op("MultiHeadAttention", [part(g, x, 0), part(g, x, 1), part(g, x, 2)], { num_heads: H }, { domain: "com.microsoft" }),
  };
  const unfused: Chain = {
    name: "unfused int8 chain",
    build: (g, x) => {
      const [qq, qs, qz] = g.opN("DynamicQuantizeLinear", [heads(g, part(g, x, 0), [0, 2, 1, 3])], {}, { outputs: 3 });
      const [kq, ks, kz] = g.opN("DynamicQuantizeLinear", [heads(g, part(g, x, 1), [0, 2, 3, 1])], {}, { outputs: 3 });
      const [vq, vs, vz] = g.opN("DynamicQuantizeLinear", [heads(g, part(g, x, 2), [0, 2, 1, 3])], {}, { outputs: 3 });
      const scoreScale = g.op("Mul", [g.op("Mul", [qs, ks]), g.constF32(1 / Math.sqrt(D))]);
      const pScale = g.constF32(1 / 255);
      const outs: Value[] = [];
      for (let c = 0; c < (B * H) / CHUNK; c++) {
        const sl = (v: Value) => g.op("Slice", [v, g.constI64([c * CHUNK]), g.constI64([(c + 1) * CHUNK]), g.constI64([0])]);
        const scores = g.op("Mul", [g.op("Cast", [g.op("MatMulInteger", [sl(qq), sl(kq), qz, kz])], { to: OnnxType.FLOAT }), scoreScale]);
        const p = g.op("QuantizeLinear", [g.op("Softmax", [scores], { axis: -1 }), pScale, g.rawWeight("u8.0")]);
        outs.push(g.op("Cast", [g.op("MatMulInteger", [p, sl(vq), g.rawWeight("u8.0"), vz])], { to: OnnxType.FLOAT }));
      }
      const o = g.op("Mul", [g.op("Concat", outs, { axis: 0 }), g.op("Mul", [vs, pScale])]);
      return g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [o, g.constI64([B, H, S, D])])], { perm: [0, 2, 1, 3] }), g.constI64([B, S, width])]);
    },
  };
  const scores = new ort.Tensor("float32", wave(CHUNK * S * S, 0.0071, 6), [CHUNK, S, S]);
  return [
    { label: `self-attention, batch ${B} × ${H} heads × ${S} tokens, head dim ${D}`, flop: 4 * B * H * S * S * D, dims: [3, B, S, width], input, chains: [mha, unfused] },
    {
      label: `Softmax alone over fp32 scores [${B * H}, ${S}, ${S}] (${(B * H) / CHUNK} chunks of ${CHUNK} heads)`, flop: 0, dims: [CHUNK, S, S], input: scores, repeat: (B * H) / CHUNK,
      // Only the first row leaves the graph, so the time is the Softmax, not the copy of its output into JavaScript.
      chains: [{ name: "Softmax", build: (g, x) => g.op("Slice", [g.op("Softmax", [x], { axis: -1 }), g.constI64([0, 0]), g.constI64([1, 1]), g.constI64([0, 1])]) }],
    },
  ];
}

const maxAbs = (xs: Float32Array) => xs.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function runCase(weights: WeightSource, c: Case, reps: number, threads: number): Promise<void> {
  const first = await session(weights, c.chains[0], c.dims, threads, { inMax: 0, outMax: 0 });
  const ref = (await first.run({ x: c.input })).y.data as Float32Array;
  const ranges = { inMax: maxAbs(c.input.data as Float32Array), outMax: maxAbs(ref) };
  const sessions = [first, ...(await Promise.all(c.chains.slice(1).map((ch) => session(weights, ch, c.dims, threads, ranges).catch((e: Error) => e))))];
  const outputs = await Promise.all(sessions.map(async (s) => (s instanceof Error ? undefined : ((await s.run({ x: c.input })).y.data as Float32Array))));
  const times = c.chains.map(() => [] as number[]);
  for (let r = 0; r < reps; r++) {
    for (const [j, s] of sessions.entries()) {
      if (s instanceof Error) continue;
      const t0 = performance.now();
      await s.run({ x: c.input });
      times[j].push((performance.now() - t0) * (c.repeat ?? 1));
    }
  }
  const refMax = ranges.outMax;
  console.log(`\n${c.label}${c.flop ? `: ${(c.flop / 1e9).toFixed(1)} GFLOP` : ""}; load average ${os.loadavg()[0].toFixed(1)}`);
  for (const [j, ch] of c.chains.entries()) {
    const s = sessions[j];
    if (s instanceof Error) {
      console.log(`  ${ch.name.padEnd(44)} unavailable: ${s.message.split("\n")[0].slice(0, 140)}`);
      continue;
    }
    let d = 0;
    const y = outputs[j]!;
    for (let i = 0; i < y.length; i++) d = Math.max(d, Math.abs(y[i] - ref[i]));
    const best = Math.min(...times[j]);
    const rate = c.flop ? ` (${(c.flop / best / 1e6).toFixed(0)} GFLOP/s)` : "";
    console.log(`  ${ch.name.padEnd(44)} best ${best.toFixed(0).padStart(6)} ms, median ${median(times[j]).toFixed(0).padStart(6)} ms${rate}; max |Δ| / max |fp32| ${(d / refMax).toExponential(1)}`);
    await s.release();
  }
}

async function main(): Promise<void> {
  const part = arg("part", "conv,attention");
  const reps = Number(arg("reps", "3"));
  const threads = Number(arg("threads", "2"));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-int8-"));
  try {
    const channels = [...new Set(CONV_SHAPES.map(([c]) => c))];
    await writeSafetensors(path.join(dir, "model.safetensors"), [...SCALARS, ...(part.includes("conv") ? channels.flatMap(convTensors) : [])]);
    const weights = await openWeights(dir);
    console.log(`${threads} threads, ${reps} interleaved rounds after one warm-up; load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
    const cases = [...(part.includes("conv") ? convCases() : []), ...(part.includes("attention") ? attentionCases() : [])];
    for (const c of cases) await runCase(weights, c, reps, threads);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
