/**
 * Where a transformer step's time goes: onnxruntime's per-node profile summed by kind (each block's Linear
 * layers, self-/cross-attention, GELU, LayerNorm, elementwise), per denoising step, with the GFLOP/s each kind of
 * Linear reaches (2·rows·K·N per call over its kernel time), and wall and CPU time per step. `--variants` loads
 * several variants of this build (fp32, fp32-prepack, int8, int8-prepack) whose steps alternate in one process;
 * with `--against DIR` they also alternate with another build's step graph (e.g. main's, `DIR/dist`), fed the full
 * padded prompt, and with `--against-model DIR` with another build's PixArtTransformer2DModel loaded with the first
 * variant's options (a model-to-model A/B), so machine load hits all alike. CPU time (process.cpuUsage, all
 * threads) is far less disturbed by other processes than wall time; with `--threads 1` it is the step's own work.
 *
 * Input: a CFG batch of 2 at `--latent` × `--latent` latents (64 = 512 px) with a 300-token padded prompt that keeps
 * 20 tokens (and the negative prompt `--negative-tokens`, default 1: T5's EOS of diffusers' empty negative prompt),
 * timesteps 999 then 500 ... like a pipeline's steps.
 *
 * Make a full-size random-weight transformer first (2.4 GB, never committed):
 *   .venv/bin/python tools/reference/make_fullsize.py /tmp/pixart-full --components transformer
 * Run: npm run build && node --expose-gc dist/bench/transformer-profile.js /tmp/pixart-full/transformer \
 *        [--latent 64] [--steps 3] [--threads 2] [--variants fp32,int8] [--cache-dir DIR] [--against /path/to/other/checkout/dist]
 *        [--against-model /path/to/other/checkout/dist] [--negative-tokens 1]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as ort from "onnxruntime-node";
import { openWeights } from "../src/io/checkpoint";
import { readJsonObject } from "../src/io/json";
import type { Tensor } from "../src/models/model";
import { parsePixArtTransformerConfig, PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import type { QuantizeLoadOptions } from "../src/models/quantized-cache";
import { createSession, type SessionConfig } from "../src/onnx/session";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

interface TraceEvent {
  cat: string;
  name: string;
  dur: number;
  ts: number;
  args: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}

const LINEAR_OPS = ["FusedMatMul", "MatMul", "Gemm", "DynamicQuantizeMatMul", "MatMulNBits"];

/** Multiply-adds ×2 of a Linear node from its input shapes: rows of x times K times N (from the weight's layout). */
function linearFlop(e: TraceEvent): number {
  const [x, w] = (e.args.input_type_shape ?? []).map((s) => Object.values(s)[0]);
  if (!x || !w) return 0;
  const rows = x.slice(0, -1).reduce((a, d) => a * d, 1);
  const k = x[x.length - 1];
  // FusedMatMul(transB) reads torch's [N, K]; DynamicQuantizeMatMul [K, N]; MatMulNBits [N, K/block, blob].
  const n = e.args.op_name === "DynamicQuantizeMatMul" ? w[1] : w[0];
  return 2 * rows * k * n;
}

/** A node's kind: Linear layers by where they sit in the block, attention by whether keys are image or text tokens. */
function kind(e: TraceEvent): string {
  const op = e.args.op_name ?? "?";
  const name = e.name.replace(/_kernel_time$/, "");
  if (LINEAR_OPS.includes(op)) {
    for (const [part, label] of [["attn1", "linear attn1"], ["attn2", "linear attn2"], ["ff.net.0", "linear ff1"], ["ff.net.2", "linear ff2"]]) {
      if (name.includes(part)) return label;
    }
    return "linear other";
  }
  if (op === "MultiHeadAttention") {
    const shapes = (e.args.input_type_shape ?? []).map((s) => Object.values(s)[0]);
    return shapes[0]?.[1] === shapes[1]?.[1] ? "attention self" : "attention cross";
  }
  return op;
}

/** Median per-run milliseconds of each kind over the runs after the first (warm-up), and each Linear kind's FLOP per run. */
function summarize(file: string): { ms: Map<string, number>; flop: Map<string, number> } {
  const events = JSON.parse(fs.readFileSync(file, "utf8")) as TraceEvent[];
  const runs = events.filter((e) => e.name === "model_run").map((e) => [e.ts, e.ts + e.dur]);
  const perRun = runs.map(() => new Map<string, number>());
  const flop = new Map<string, number>();
  for (const e of events) {
    if (e.cat !== "Node" || !e.name.endsWith("_kernel_time")) continue;
    const r = runs.findIndex(([a, b]) => e.ts >= a && e.ts <= b);
    if (r >= 0) perRun[r].set(kind(e), (perRun[r].get(kind(e)) ?? 0) + e.dur / 1000);
    if (r === runs.length - 1 && LINEAR_OPS.includes(e.args.op_name ?? "")) flop.set(kind(e), (flop.get(kind(e)) ?? 0) + linearFlop(e));
  }
  const counted = perRun.length > 1 ? perRun.slice(1) : perRun;
  const ms = new Map<string, number>();
  for (const k of new Set(counted.flatMap((m) => [...m.keys()]))) ms.set(k, median(counted.map((m) => m.get(k) ?? 0)));
  return { ms, flop };
}

/** The variants `--variants` can load, as fromPretrained options. */
const VARIANTS: Record<string, SessionConfig & QuantizeLoadOptions> = {
  "fp32": {},
  "fp32-prepack": { prepack: true },
  "int8": { quantize: "int8" },
  "int8-prepack": { quantize: "int8", prepack: true },
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

function traces(prefix: string): string[] {
  const dir = path.dirname(prefix);
  return fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix) + ".")).map((f) => path.join(dir, f));
}

interface Runner {
  label: string;
  /** One step; returns the output (noise prediction) as float32. */
  step(latents: Tensor, t: number): Promise<Float32Array>;
  release(): Promise<void>;
}

async function main(): Promise<void> {
  const dir = process.argv.find((a, i) => i >= 2 && !a.startsWith("--") && !process.argv[i - 1].startsWith("--")) ?? "/tmp/pixart-full/transformer";
  const latent = Number(arg("latent", "64"));
  const steps = Number(arg("steps", "3"));
  const threads = Number(arg("threads", String(os.cpus().length)));
  const against = arg("against", "");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-profile-"));
  const config = parsePixArtTransformerConfig(await readJsonObject(path.join(dir, "config.json")), "config.json");
  const [b, len, c] = [2, 300, config.captionChannels ?? config.crossAttentionDim];
  const mask = new BigInt64Array(b * len);
  const negativeTokens = Number(arg("negative-tokens", "1"));
  mask.fill(1n, 0, negativeTokens);
  mask.fill(1n, len, len + 20);
  const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
  const text = { encoderHiddenStates: { data: rand(b * len * c, 1), dims: [b, len, c] }, encoderAttentionMask: { data: mask, dims: [b, len] } };

  const runners: (Runner & { prefix: string })[] = [];
  let model: PixArtTransformer2DModel | undefined;
  const variants = arg("variants", "fp32").split(",");
  const load = async (Model: typeof PixArtTransformer2DModel, variant: string, label: string, prefix: string) => {
    const opts = VARIANTS[variant];
    if (!opts) throw new Error(`--variants: expected some of ${Object.keys(VARIANTS).join(", ")}, got ${JSON.stringify(variant)}`);
    const cacheDir = arg("cache-dir", "") || undefined;
    const m = await Model.fromPretrained(dir, { ...opts, cacheDir, inProcess: true, intraOpNumThreads: threads, profile: prefix, log: console.log });
    model ??= m;
    runners.push({
      label,
      prefix,
      step: async (latents, t) => (await m.forward({ hiddenStates: latents, ...text, timestep: [t, t] })).data as Float32Array,
      release: () => m.release(),
    });
  };
  for (const variant of variants) await load(PixArtTransformer2DModel, variant, `this build, ${variant}`, path.join(work, variant));
  const againstModel = arg("against-model", "");
  if (againstModel) {
    const other = require(path.resolve(againstModel, "src/models/pixart-transformer-2d")) as typeof import("../src/models/pixart-transformer-2d");
    await load(other.PixArtTransformer2DModel, variants[0], `model of ${againstModel}, ${variants[0]}`, path.join(work, "against-model"));
  }
  if (against) {
    // The other build's graph in a session made here (so it is profiled the same way), fed as that build feeds it.
    const other = require(path.resolve(against, "src/models/pixart-transformer-2d")) as typeof import("../src/models/pixart-transformer-2d");
    const built = other.buildPixArtTransformerGraph(config, await openWeights(dir));
    const session = await createSession(built, { intraOpNumThreads: threads, profile: path.join(work, "against") });
    const p = config.patchSize;
    runners.push({
      label: `against ${against}`,
      prefix: path.join(work, "against"),
      step: async (latents, t) => Object.values(await session.run({
        hidden_states: new ort.Tensor("float32", latents.data, [...latents.dims]),
        encoder_hidden_states: new ort.Tensor("float32", text.encoderHiddenStates.data, text.encoderHiddenStates.dims),
        encoder_attention_mask: new ort.Tensor("int64", mask, [b, len]),
        timestep: new ort.Tensor("float32", Float32Array.of(t, t), [b]),
        pos_embed: new ort.Tensor("float32", model!.posEmbed(latent / p, latent / p), [1, (latent / p) ** 2, config.innerDim]),
      }))[0].data as Float32Array,
      release: () => session.release(),
    });
  }

  const wall = runners.map(() => [] as number[]);
  const cpu = runners.map(() => [] as number[]);
  const loads: number[] = [];
  /** Each runner's largest |output − the first runner's output| over the steps (same inputs). */
  const diffs = runners.map(() => 0);
  for (let s = 0; s < steps; s++) {
    let first: Float32Array | undefined;
    const latents = { data: rand(b * config.inChannels * latent * latent, 100 + s), dims: [b, config.inChannels, latent, latent] };
    for (const [i, r] of runners.entries()) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const y = await r.step(latents, Math.round(999 - (s * 999) / steps));
      const c = process.cpuUsage(c0);
      first ??= y;
      for (let j = 0; j < y.length; j++) diffs[i] = Math.max(diffs[i], Math.abs(y[j] - first[j]));
      wall[i].push(performance.now() - t0);
      cpu[i].push((c.user + c.system) / 1000);
      loads.push(os.loadavg()[0]);
    }
  }
  for (const r of runners) await r.release();

  console.log(`transformer ${dir}: ${config.numLayers} blocks, width ${config.innerDim}; latent ${latent}×${latent} (${(latent / config.patchSize) ** 2} image tokens), ` +
    `CFG batch 2, 300 text tokens (20 and ${negativeTokens} kept), ${threads} threads, ${steps} steps each (the first one is warm-up)`);
  for (const [i, r] of runners.entries()) {
    const fmt = (xs: number[]) => `${xs.map((x) => (x / 1000).toFixed(2)).join(", ")} s (median after the first ${(median(xs.slice(1)) / 1000).toFixed(2)} s)`;
    console.log(`\n${r.label}: wall per step ${fmt(wall[i])}; CPU per step ${fmt(cpu[i])}` +
      (i > 0 ? `; output max |Δ| vs ${runners[0].label} ${diffs[i].toExponential(1)}` : ""));
    for (const file of traces(r.prefix)) {
      const { ms: sum, flop } = summarize(file);
      const total = [...sum.values()].reduce((a, x) => a + x, 0);
      console.log(`  ${path.basename(file)}: kernels ${(total / 1000).toFixed(2)} s per run (median)`);
      for (const [k, ms] of [...sum.entries()].sort((a, x) => x[1] - a[1]).filter(([, ms]) => ms >= total / 200)) {
        const rate = flop.get(k) ? `  ${(flop.get(k)! / ms / 1e6).toFixed(0).padStart(5)} GFLOP/s` : "";
        console.log(`    ${k.padEnd(22)} ${ms.toFixed(1).padStart(9)} ms  ${((100 * ms) / total).toFixed(1).padStart(5)} %${rate}`);
      }
    }
  }
  console.log(`\nload average during the runs: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} (1 min), ${os.cpus().length} CPUs`);
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
