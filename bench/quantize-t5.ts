/**
 * Quantized T5 encoders: how far int8/int4 prompt embeddings are from fp32, and what quantizing costs and saves
 * at the T5-XXL shape. Figures from this script are quoted in docs/quantization.md.
 *
 *   node --expose-gc dist/bench/quantize-t5.js [xxlTextEncoderDir] [--skip-tiny] [--linear] [--layers N] [--cache-dir DIR]
 *
 * 1. Quality, every committed tiny T5 (test/fixtures/tiny-*): one batch of PROMPTS (padded to the longest),
 *    last_hidden_state of the quantized model vs the fp32 model at every real token: cosine similarity
 *    (mean and min over tokens) and max |Δ| (also relative to max |fp32|).
 * 2. With a T5-XXL-shaped folder (e.g. `.venv/bin/python tools/reference/make_fullsize.py /tmp/pixart-full
 *    --components text_encoder --dtype bfloat16`, random weights), each variant runs in a fresh process:
 *    load time (the first int8/int4 load quantizes and writes the cache, a second one maps it), RSS after load,
 *    one forward at batch 2, length 300 (time, RSS after), and the quality batch, compared in this process.
 *    The cache goes to a fresh temp folder unless --cache-dir is given (it is not deleted: it is GBs, delete it).
 * 3. --linear: one T5-XXL FFN Linear (x [600, 4096] → 10240, Gaussian weights and inputs) per variant, the
 *    kernels interleaved, best of 5: time, and the relative RMS error vs the float64 product with the source
 *    weights over 16 rows; for int8 also split into the weight part (dequantized weights, exact matmul) and the
 *    rest (DynamicQuantizeMatMul's per-tensor uint8 activations).
 * 4. --layers N (with a folder): the first N layers only, all variants in one process, forward [2, 300]
 *    interleaved, best of 3 (full-model single runs are at the mercy of other load on a shared machine).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as ort from "onnxruntime-node";
import { openWeights } from "../src/io/checkpoint";
import { readJsonObject } from "../src/io/json";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors-writer";
import { formatBytes, processMemory } from "../src/memory/probes";
import {
  dequantizeInt4, dequantizeInt8, quantizeInt4, quantizeInt8, quantizedLinear, quantizedTensors,
  type Int4AccuracyLevel, type LinearFn, type QuantizeMethod,
} from "../src/models/quantize";
import { prepareQuantized } from "../src/models/quantized-cache";
import { T5EncoderModel, buildT5EncoderGraph, parseT5Config, type T5LinearFn } from "../src/models/t5-encoder";
import { GraphBuilder } from "../src/onnx/graph";
import { linear as fp32Linear } from "../src/onnx/ops";
import { createSession } from "../src/onnx/session";
import { TorchGenerator } from "../src/random";
import { T5Tokenizer } from "../src/tokenizer/t5-tokenizer";
import { fixturesDir } from "../test/helpers/paths";

/** Token ids for the XXL-shaped run come from a tiny fixture tokenizer: the weights are random anyway. */
const TOKENIZER_DIR = path.join(fixturesDir, "tiny-square", "pipeline", "tokenizer");

/** Captions in the style PixArt is prompted with (written for this benchmark). */
const PROMPTS = [
  "A small red fox sleeping in the snow under a pine tree, soft morning light",
  "An astronaut riding a bicycle across a desert at sunset, cinematic, 35mm film",
  "Close-up portrait of an old fisherman with a grey beard, dramatic lighting, highly detailed",
  "A bowl of ramen with a soft-boiled egg, green onions and steam rising, studio photo",
  "Watercolor painting of a lighthouse on a rocky coast during a storm",
  "A futuristic city skyline at night with flying cars and neon signs reflected in the rain",
  "Isometric illustration of a cozy library with wooden shelves, a cat and a reading lamp",
  "a cup",
];

interface Variant {
  name: string;
  quantize?: QuantizeMethod;
  int4AccuracyLevel?: Int4AccuracyLevel;
  /** Only load (and report load time / RSS); skip the forwards. */
  loadOnly?: boolean;
}

const VARIANTS: Variant[] = [
  { name: "fp32 compute (stored dtype)" },
  { name: "int8, first load (quantize)", quantize: "int8" },
  { name: "int8, cached", quantize: "int8", loadOnly: true },
  { name: "int4 acc 0, first load (quantize)", quantize: "int4" },
  { name: "int4 acc 0, cached", quantize: "int4", loadOnly: true },
  { name: "int4 acc 4 (prepacked), cached", quantize: "int4", int4AccuracyLevel: 4 },
];

interface Quality {
  cosMean: number;
  cosMin: number;
  maxAbs: number;
  maxRef: number;
}

/** Per real token: cosine of the quantized vs reference vectors; max |Δ| over all real tokens. */
function compare(ref: Float32Array, q: Float32Array, mask: number[][], width: number): Quality {
  let cosSum = 0;
  let cosMin = Infinity;
  let count = 0;
  let maxAbs = 0;
  let maxRef = 0;
  const length = mask[0].length;
  mask.forEach((row, b) => row.forEach((m, t) => {
    if (!m) return;
    const at = (b * length + t) * width;
    let dot = 0;
    let nr = 0;
    let nq = 0;
    for (let i = at; i < at + width; i++) {
      dot += ref[i] * q[i];
      nr += ref[i] * ref[i];
      nq += q[i] * q[i];
      maxAbs = Math.max(maxAbs, Math.abs(ref[i] - q[i]));
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
    }
    const cos = dot / Math.sqrt(nr * nq);
    cosSum += cos;
    cosMin = Math.min(cosMin, cos);
    count++;
  }));
  return { cosMean: cosSum / count, cosMin, maxAbs, maxRef };
}

function tensorOf(rows: number[][]): { data: BigInt64Array; dims: number[] } {
  return { data: BigInt64Array.from(rows.flat(), (v) => BigInt(v)), dims: [rows.length, rows[0].length] };
}

function formatQuality(q: Quality): string {
  return `cos mean ${q.cosMean.toFixed(6)}, min ${q.cosMin.toFixed(6)}; max |Δ| ${q.maxAbs.toExponential(2)} (max |fp32| ${q.maxRef.toFixed(3)}, ratio ${(q.maxAbs / q.maxRef).toExponential(2)})`;
}

async function tinyQuality(): Promise<void> {
  const root = fixturesDir;
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-qbench-"));
  try {
    for (const name of fs.readdirSync(root).filter((n) => n.startsWith("tiny-")).sort()) {
      const pipeline = path.join(root, name, "pipeline");
      const tokenizer = await T5Tokenizer.fromPretrained(path.join(pipeline, "tokenizer"));
      const batch = tokenizer.encode(PROMPTS, { padding: "longest" });
      const input = { inputIds: tensorOf(batch.inputIds), attentionMask: tensorOf(batch.attentionMask) };
      const run = async (v: Variant) => {
        const model = await T5EncoderModel.fromPretrained(path.join(pipeline, "text_encoder"), { ...v, cacheDir });
        try {
          return { out: (await model.forward(input)).data, width: model.config.dModel };
        } finally {
          await model.release();
        }
      };
      const ref = await run(VARIANTS[0]);
      for (const v of VARIANTS.filter((x) => x.quantize && !x.loadOnly)) {
        const q = await run(v);
        console.log(`${name} ${v.quantize}${v.int4AccuracyLevel ? ` acc ${v.int4AccuracyLevel}` : ""}: ${formatQuality(compare(ref.out, q.out, batch.attentionMask, ref.width))}`);
      }
    }
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

interface ChildReport {
  loadMs: number;
  cacheHit?: boolean;
  afterLoad: ReturnType<typeof processMemory>;
  forwardMs?: number;
  afterForward?: ReturnType<typeof processMemory>;
  qualityFile?: string;
  width: number;
}

/** One variant in this (fresh) process: load, forward at [2, 300], quality batch written to `outFile`. */
async function child(dir: string, v: Variant, cacheDir: string, outFile: string): Promise<ChildReport> {
  const tokenizer = await T5Tokenizer.fromPretrained(TOKENIZER_DIR);
  let t = performance.now();
  const model = await T5EncoderModel.fromPretrained(dir, { quantize: v.quantize, int4AccuracyLevel: v.int4AccuracyLevel, cacheDir });
  const loadMs = performance.now() - t;
  global.gc?.();
  const report: ChildReport = { loadMs, cacheHit: model.quantization?.cacheHit, afterLoad: processMemory(), width: model.config.dModel };
  if (!v.loadOnly) {
    const timing = tokenizer.encode([PROMPTS[0], ""], { padding: "max_length", maxLength: 300 });
    t = performance.now();
    await model.forward({ inputIds: tensorOf(timing.inputIds), attentionMask: tensorOf(timing.attentionMask) });
    report.forwardMs = performance.now() - t;
    global.gc?.();
    report.afterForward = processMemory();
    const batch = tokenizer.encode(PROMPTS, { padding: "longest" });
    const out = await model.forward({ inputIds: tensorOf(batch.inputIds), attentionMask: tensorOf(batch.attentionMask) });
    fs.writeFileSync(outFile, out.data);
    report.qualityFile = outFile;
  }
  await model.release();
  return report;
}

function memoryText(m: ReturnType<typeof processMemory>): string {
  return `RSS ${formatBytes(m.rss)} (file ${formatBytes(m.rssFile)}, anon ${formatBytes(m.rssAnon)}), peak ${formatBytes(m.rssPeak)}`;
}

async function xxl(dir: string, cacheDir: string): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-qbench-out-"));
  console.log(`\n${dir}: cache in ${cacheDir}; token ids from ${TOKENIZER_DIR}`);
  let ref: Float32Array | undefined;
  const mask = (await T5Tokenizer.fromPretrained(TOKENIZER_DIR)).encode(PROMPTS, { padding: "longest" }).attentionMask;
  VARIANTS.forEach((v, i) => {
    const outFile = path.join(work, `variant-${i}.f32`);
    const res = spawnSync(process.execPath, ["--expose-gc", __filename, "--child", JSON.stringify({ dir, v, cacheDir, outFile })], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (res.status !== 0) {
      console.log(`${v.name}: failed (${res.status})\n${res.stderr}`);
      return;
    }
    const r = JSON.parse(res.stdout.trim().split("\n").pop()!) as ChildReport;
    console.log(`${v.name}: load ${(r.loadMs / 1000).toFixed(1)} s${r.cacheHit === undefined ? "" : r.cacheHit ? " (cache hit)" : " (quantized)"}; after load ${memoryText(r.afterLoad)}`);
    if (r.forwardMs !== undefined) console.log(`  forward [2, 300]: ${(r.forwardMs / 1000).toFixed(1)} s; after ${memoryText(r.afterForward!)}`);
    if (r.qualityFile) {
      const b = fs.readFileSync(r.qualityFile);
      const out = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      if (!ref) ref = out;
      else console.log(`  quality vs fp32: ${formatQuality(compare(ref, out, mask, r.width))}`);
    }
  });
  fs.rmSync(work, { recursive: true, force: true });
}

/** x [m, k] · wᵀ (w [n, k]) in float64 for the first `rows` rows. */
function matmulRows(x: Float32Array, w: Float32Array, k: number, n: number, rows: number): Float64Array {
  const y = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += x[i * k + t] * w[j * k + t];
      y[i * n + j] = acc;
    }
  }
  return y;
}

function relRms(a: ArrayLike<number>, ref: ArrayLike<number>, count: number): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < count; i++) {
    num += (a[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / den);
}

async function linearSection(): Promise<void> {
  const [m, k, n, rows] = [600, 4096, 10240, 16];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-qbench-linear-"));
  try {
    // T5's initialisation scale for wi (factor · d_model^-0.5); the scale does not change relative errors.
    const w = new TorchGenerator(1).randn([n, k]).map((v) => v / 64);
    const x = new TorchGenerator(2).randn([m, k]);
    const q8 = quantizeInt8(w, n, k);
    const q4 = quantizeInt4(w, n, k);
    const t8 = quantizedTensors("int8", { prefix: "int8", shape: [n, k] });
    const t4 = quantizedTensors("int4", { prefix: "int4", shape: [n, k] });
    const tensors: TensorToWrite[] = [
      { name: "fp32.weight", dtype: "F32", shape: [n, k], data: w },
      { ...t8.q, data: q8.q }, { ...t8.scales, data: q8.scales },
      { ...t4.q, data: q4.b }, { ...t4.scales, data: q4.scales }, { ...t4.zeroPoints!, data: q4.zeroPoints },
    ];
    await writeSafetensors(path.join(dir, "model.safetensors"), tensors);
    const weights = await openWeights(dir);
    const variants: { name: string; prefix: string; lin: LinearFn; prepack?: boolean }[] = [
      { name: "fp32 FusedMatMul", prefix: "fp32", lin: fp32Linear },
      { name: "int8 DynamicQuantizeMatMul", prefix: "int8", lin: quantizedLinear("int8") },
      { name: "int4 MatMulNBits acc 0", prefix: "int4", lin: quantizedLinear("int4") },
      { name: "int4 MatMulNBits acc 4 (prepacked)", prefix: "int4", lin: quantizedLinear("int4", { accuracyLevel: 4 }), prepack: true },
    ];
    const sessions = await Promise.all(variants.map(async (v) => {
      const g = new GraphBuilder(v.name, weights);
      g.output(v.lin(g, g.input("x", "float32", ["m", k]), v.prefix, { bias: false, shape: [n, k] }), "y", "float32", ["m", n]);
      return createSession(g.build(), { prepack: v.prepack });
    }));
    const feed = { x: new ort.Tensor("float32", x, [m, k]) };
    const best = variants.map(() => Infinity);
    const outputs: Float32Array[] = [];
    for (let rep = 0; rep < 5; rep++) {
      for (let i = 0; i < variants.length; i++) {
        const t = performance.now();
        const out = await sessions[i].run(feed);
        best[i] = Math.min(best[i], performance.now() - t);
        outputs[i] = out.y.data as Float32Array;
      }
    }
    await Promise.all(sessions.map((s) => s.release()));
    const exact = matmulRows(x, w, k, n, rows);
    const exact8 = matmulRows(x, dequantizeInt8(q8, n, k), k, n, rows);
    const exact4 = matmulRows(x, dequantizeInt4(q4, n, k), k, n, rows);
    console.log(`\nOne Linear x [${m}, ${k}] → ${n}, best of 5 (interleaved); relative RMS error over ${rows} rows vs float64 with the source weights:`);
    variants.forEach((v, i) => {
      const gflops = (2 * m * k * n) / best[i] / 1e6;
      console.log(`  ${v.name}: ${best[i].toFixed(0)} ms (${gflops.toFixed(0)} GFLOP/s), error ${relRms(outputs[i], exact, rows * n).toExponential(2)}`);
    });
    console.log(`  int8 split: weights alone ${relRms(exact8, exact, rows * n).toExponential(2)}, activations (vs exact with int8 weights) ${relRms(outputs[1], exact8, rows * n).toExponential(2)}`);
    console.log(`  int4 weights alone ${relRms(exact4, exact, rows * n).toExponential(2)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const asT5Linear = (lin: LinearFn): T5LinearFn => (g, x, prefix, shape) => lin(g, x, prefix, { bias: false, shape });

/** The first `layers` layers of the encoder in `dir`, as variant `v` (quantized files cached per layer count). */
async function loadLayers(dir: string, layers: number, v: Variant, cacheDir: string): Promise<T5EncoderModel> {
  const configFile = path.join(dir, "config.json");
  const config = { ...parseT5Config(await readJsonObject(configFile), configFile), numLayers: layers };
  const weights = await openWeights(dir);
  if (!v.quantize) return T5EncoderModel.fromWeights(config, weights);
  const q = await prepareQuantized(weights, (lin) => buildT5EncoderGraph(config, weights, { linear: asT5Linear(lin) }),
    { quantize: v.quantize, int4AccuracyLevel: v.int4AccuracyLevel, cacheDir, label: `text_encoder-${layers}-layers` });
  return T5EncoderModel.fromWeights(config, q.weights, { ...q.session({}), linear: asT5Linear(q.linear) });
}

async function layerTiming(dir: string, layers: number, cacheDir: string): Promise<void> {
  const variants = VARIANTS.filter((v) => !v.loadOnly);
  const models = [];
  for (const v of variants) models.push(await loadLayers(dir, layers, v, cacheDir));
  const timing = (await T5Tokenizer.fromPretrained(TOKENIZER_DIR)).encode([PROMPTS[0], ""], { padding: "max_length", maxLength: 300 });
  const input = { inputIds: tensorOf(timing.inputIds), attentionMask: tensorOf(timing.attentionMask) };
  const best = variants.map(() => Infinity);
  for (let rep = 0; rep < 3; rep++) {
    for (let i = 0; i < models.length; i++) {
      const t = performance.now();
      await models[i].forward(input);
      best[i] = Math.min(best[i], performance.now() - t);
    }
  }
  console.log(`\nFirst ${layers} layers of ${dir}, forward [2, 300], best of 3 (interleaved):`);
  variants.forEach((v, i) => console.log(`  ${v.name.replace(/, first load \(quantize\)/, "")}: ${(best[i] / 1000).toFixed(2)} s`));
  for (const m of models) await m.release();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--child") {
    const { dir, v, cacheDir, outFile } = JSON.parse(args[1]) as { dir: string; v: Variant; cacheDir: string; outFile: string };
    console.log(JSON.stringify(await child(dir, v, cacheDir, outFile)));
    return;
  }
  const cacheAt = args.indexOf("--cache-dir");
  const cacheDir = cacheAt >= 0 ? args[cacheAt + 1] : fs.mkdtempSync(path.join(os.tmpdir(), "pixart-qbench-cache-"));
  const layersAt = args.indexOf("--layers");
  const dir = args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--cache-dir" && args[i - 1] !== "--layers");
  if (!args.includes("--skip-tiny")) await tinyQuality();
  if (args.includes("--linear")) await linearSection();
  if (dir && layersAt >= 0) await layerTiming(dir, Number(args[layersAt + 1]), cacheDir);
  else if (dir) await xxl(dir, cacheDir);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
