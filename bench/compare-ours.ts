/**
 * pixart-ts side of bench/compare.ts: the same line-JSON protocol as tools/bench/compare_torch.py (one command
 * per stdin line, one reply per stdout line), so the two engines run as twin processes, each with its own
 * peak RSS. Inputs and outputs are safetensors files written by the orchestrator.
 *
 * Commands ("op"): load, release, transformer, vae, t5, e2e, gemm, profile_linear, quit.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as readline from "readline";
import * as ort from "onnxruntime-node";
import { openSafetensors, readTensorData, toTypedArray } from "../src/io/safetensors";
import { writeSafetensors } from "../src/io/safetensors-writer";
import { processMemory, resetPeak } from "../src/memory/probes";
import { GraphBuilder } from "../src/onnx/graph";
import { AutoencoderKL } from "../src/models/autoencoder-kl";
import type { Tensor } from "../src/models/model";
import { PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import { T5EncoderModel } from "../src/models/t5-encoder";
import type { QuantizeMethod } from "../src/models/quantize";
import { PixArtSigmaPipeline } from "../src/pipeline/pixart-sigma";
import type { SessionConfig } from "../src/onnx/session";

type Cmd = Record<string, unknown> & { op: string };
type AnyTensor = Tensor<Float32Array | BigInt64Array | Int32Array>;
type Model = PixArtTransformer2DModel | AutoencoderKL | T5EncoderModel | PixArtSigmaPipeline;

const threads = Number(process.argv[process.argv.indexOf("--threads") + 1] || 2);
const models = new Map<string, Model>();

async function readTensors(file: string): Promise<Record<string, AnyTensor>> {
  const st = await openSafetensors(file);
  const out: Record<string, AnyTensor> = {};
  for (const info of st.tensors.values()) {
    out[info.name] = { data: toTypedArray(info, await readTensorData(info)) as AnyTensor["data"], dims: [...info.shape] };
  }
  return out;
}

async function writeTensors(file: unknown, tensors: Record<string, Tensor>): Promise<void> {
  if (typeof file !== "string") return;
  await writeSafetensors(file, Object.entries(tensors).map(([name, t]) => ({
    name, shape: t.dims, dtype: "F32" as const, data: () => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  })));
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, { seconds: number; peak: number; rss: number }]> {
  resetPeak();
  const start = process.hrtime.bigint();
  const result = await fn();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const m = processMemory();
  return [result, { seconds, peak: m.rssPeak, rss: m.rss }];
}

function model<T extends Model>(cmd: Cmd, fallback: string): T {
  const key = (cmd.key as string | undefined) ?? fallback;
  const m = models.get(key);
  if (!m) throw new Error(`no model loaded under "${key}"`);
  return m as T;
}

function session(cmd: Cmd): SessionConfig {
  return { intraOpNumThreads: threads, ...(cmd.prepack ? { prepack: true } : {}), ...(cmd.profile ? { profile: cmd.profile as string, inProcess: true } : {}) };
}

const ops: Record<string, (cmd: Cmd) => Promise<Record<string, unknown>>> = {
  async load(cmd) {
    const dir = cmd.dir as string;
    const quant = cmd.quantize ? { quantize: cmd.quantize as QuantizeMethod, cacheDir: cmd.cacheDir as string } : {};
    const [m, figures] = await timed<Model>(async () => {
      switch (cmd.component) {
        case "transformer": return PixArtTransformer2DModel.fromPretrained(dir, { ...session(cmd), ...quant });
        case "vae": return AutoencoderKL.fromPretrained(dir, session(cmd));
        case "text_encoder": return T5EncoderModel.fromPretrained(dir, { ...session(cmd), ...quant });
        case "pipeline": return PixArtSigmaPipeline.fromPretrained(dir, {
          textEncoder: null, progress: false, vae: session(cmd),
          transformer: cmd.quantize ? await PixArtTransformer2DModel.fromPretrained(path.join(dir, "transformer"), { ...session(cmd), ...quant }) : session(cmd),
        });
        default: throw new Error(`unknown component ${String(cmd.component)}`);
      }
    });
    models.set((cmd.key as string | undefined) ?? (cmd.component as string), m);
    return figures;
  },

  async release(cmd) {
    const key = cmd.key as string;
    const m = models.get(key);
    models.delete(key);
    if (m instanceof PixArtSigmaPipeline) await m.dispose();
    else await m?.release();
    (globalThis as { gc?: () => void }).gc?.();
    const mem = processMemory();
    return { rss: mem.rss };
  },

  async transformer(cmd) {
    const t = await readTensors(cmd.inputs as string);
    const m = model<PixArtTransformer2DModel>(cmd, "transformer");
    const [out, figures] = await timed(() => m.forward({
      hiddenStates: t.hidden_states as Tensor, encoderHiddenStates: t.encoder_hidden_states as Tensor,
      encoderAttentionMask: t.encoder_attention_mask as Tensor<BigInt64Array>, timestep: t.timestep.data as BigInt64Array,
    }));
    await writeTensors(cmd.output, { sample: out });
    return figures;
  },

  async vae(cmd) {
    const t = await readTensors(cmd.inputs as string);
    const m = model<AutoencoderKL>(cmd, "vae");
    const [out, figures] = await timed(() => m.decodeRaw(t.z as Tensor, { tiled: Boolean(cmd.tiled) }));
    await writeTensors(cmd.output, { sample: out });
    return figures;
  },

  async t5(cmd) {
    const t = await readTensors(cmd.inputs as string);
    const m = model<T5EncoderModel>(cmd, "text_encoder");
    const [out, figures] = await timed(() => m.forward({ inputIds: t.input_ids as Tensor<BigInt64Array>, attentionMask: t.attention_mask as Tensor<BigInt64Array> }));
    await writeTensors(cmd.output, { last_hidden_state: out });
    return figures;
  },

  async e2e(cmd) {
    const t = await readTensors(cmd.inputs as string);
    const pipe = model<PixArtSigmaPipeline>(cmd, "pipeline");
    const [out, figures] = await timed(() => pipe.call({
      promptEmbeds: t.prompt_embeds as Tensor, promptAttentionMask: t.prompt_attention_mask as Tensor<BigInt64Array>,
      negativePromptEmbeds: t.negative_prompt_embeds as Tensor, negativePromptAttentionMask: t.negative_prompt_attention_mask as Tensor<BigInt64Array>,
      numInferenceSteps: cmd.steps as number, height: cmd.size as number, width: cmd.size as number, guidanceScale: (cmd.guidance as number | undefined) ?? 4.5,
      useResolutionBinning: false, seed: (cmd.seed as number | undefined) ?? 0, outputType: "tensor",
    }));
    await writeTensors(cmd.output, { image: out.tensor });
    return figures;
  },

  /** Best-of-N GFLOP/s of one fp32 MatMul [m, k] × [k, n] in onnxruntime (weights as an initializer input, not prepacked). */
  async gemm(cmd) {
    const { m, k, n } = cmd as unknown as { m: number; k: number; n: number };
    const reps = (cmd.reps as number | undefined) ?? 5;
    const sess = await ort.InferenceSession.create(matmulModel(), { intraOpNumThreads: threads, enableCpuMemArena: false, extra: { session: { disable_prepacking: "1" } } });
    const rand = (len: number) => Float32Array.from({ length: len }, () => Math.random() - 0.5);
    const feeds = { a: new ort.Tensor("float32", rand(m * k), [m, k]), b: new ort.Tensor("float32", rand(k * n), [k, n]) };
    let best = Infinity;
    for (let i = 0; i < reps; i++) {
      const start = process.hrtime.bigint();
      await sess.run(feeds);
      best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
    }
    await sess.release();
    return { seconds: best, gflops: (2 * m * k * n) / best / 1e9 };
  },

  /** One transformer call with onnxruntime profiling: time and FLOPs of its MatMul/Gemm nodes (the Linears). */
  async profile_linear(cmd) {
    const t = await readTensors(cmd.inputs as string);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-profile-"));
    try {
      const prefix = path.join(dir, "transformer");
      const quant = cmd.quantize ? { quantize: cmd.quantize as QuantizeMethod, cacheDir: cmd.cacheDir as string } : {};
      const m = await PixArtTransformer2DModel.fromPretrained(cmd.dir as string, { ...session({ op: "", profile: prefix }), ...quant });
      const input = {
        hiddenStates: t.hidden_states as Tensor, encoderHiddenStates: t.encoder_hidden_states as Tensor,
        encoderAttentionMask: t.encoder_attention_mask as Tensor<BigInt64Array>, timestep: t.timestep.data as BigInt64Array,
      };
      await m.forward(input);
      await m.release();
      const file = fs.readdirSync(dir).find((f) => f.endsWith(".json"));
      if (!file) throw new Error("onnxruntime wrote no profile on release");
      return linearProfile(JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

const LINEAR_OPS = new Set(["MatMul", "Gemm", "FusedMatMul", "DynamicQuantizeMatMul", "MatMulNBits", "MatMulIntegerToFloat"]);

interface ProfileEvent {
  cat?: string;
  name?: string;
  dur?: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[]; output_type_shape?: Record<string, number[]>[] };
}

/** Sums the kernel time of the Linear nodes of the run, and their FLOPs from the recorded shapes (2·M·K·N). */
export function linearProfile(events: ProfileEvent[]): Record<string, number> {
  let linearUs = 0;
  let flops = 0;
  let totalUs = 0;
  for (const e of events) {
    if (e.cat !== "Node" || !e.name?.endsWith("_kernel_time") || !e.dur) continue;
    totalUs += e.dur;
    if (!LINEAR_OPS.has(e.args?.op_name ?? "")) continue;
    linearUs += e.dur;
    const a = Object.values(e.args?.input_type_shape?.[0] ?? {})[0] ?? [];
    const y = Object.values(e.args?.output_type_shape?.[0] ?? {})[0] ?? [];
    const k = a[a.length - 1] ?? 0;
    const outputs = y.reduce((p, d) => p * d, 1);
    flops += 2 * outputs * k;
  }
  return { linear_seconds: linearUs / 1e6, linear_flops: flops, total_seconds: totalUs / 1e6 };
}

/** A two-input MatMul graph (no weights): the machine's GEMM rate in onnxruntime. */
function matmulModel(): Uint8Array {
  const g = new GraphBuilder("gemm");
  const a = g.input("a", "float32", ["m", "k"]);
  const b = g.input("b", "float32", ["k", "n"]);
  g.output(g.op("MatMul", [a, b]), "y", "float32", ["m", "n"]);
  return g.build().bytes;
}

async function main(): Promise<void> {
  const write = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
  write({ ready: true, onnxruntime: ort.env.versions?.common ?? "" });
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line) as Cmd;
    if (cmd.op === "quit") break;
    try {
      const op = ops[cmd.op];
      if (!op) throw new Error(`unknown op ${cmd.op}`);
      write({ ok: true, ...(await op(cmd)) });
    } catch (e) {
      write({ ok: false, error: `${(e as Error).name}: ${(e as Error).message}`, trace: (e as Error).stack });
    }
  }
  lines.close();
  for (const m of models.values()) await (m instanceof PixArtSigmaPipeline ? m.dispose() : m.release());
  process.exit(0);
}

if (require.main === module) void main();
