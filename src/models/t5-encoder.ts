/**
 * transformers `T5EncoderModel`: the T5 v1.1 text encoder of PixArt-Σ (google/t5-v1_1-xxl), run in fp32.
 *
 * input_ids, attention_mask [B, L] → last_hidden_state [B, L, d_model]. The relative position buckets are
 * computed here in TypeScript (once per L) and fed as an int64 [L, L] input, because L is dynamic and the
 * bucket function needs float32 logarithms that must round as torch's do (see `relativePositionBucket`).
 */
import * as path from "path";
import * as ort from "onnxruntime-node";
import { openWeights, withAliases, type WeightOptions } from "../io/checkpoint";
import { readJsonObject } from "../io/json";
import type { WeightCheckOptions } from "../io/weight-scan";
import type { WeightSource } from "../io/types";
import { GraphBuilder, float, type BuiltModel, type Value } from "../onnx/graph";
import { geluTanh, linear, multiHeadAttention, silu } from "../onnx/ops";
import { OnnxType } from "../onnx/proto";
import type { ModelSession, SessionConfig } from "../onnx/session";
import { ConfigReader, type RawConfig } from "./config-fields";
import { OrtModel, fromOrt, toOrt, type Tensor } from "./model";
import type { LinearFn } from "./quantize";
import { prepareQuantized, type QuantizationReport, type QuantizeLoadOptions } from "./quantized-cache";

/** Activations this graph implements, by their transformers `ACT2FN` names. */
export const T5_ACTIVATIONS = ["relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish"] as const;
export type T5Activation = (typeof T5_ACTIVATIONS)[number];

export interface T5Config {
  vocabSize: number;
  dModel: number;
  /** Width of one attention head; heads × dKv need not equal dModel. */
  dKv: number;
  numHeads: number;
  dFf: number;
  numLayers: number;
  relativeAttentionNumBuckets: number;
  relativeAttentionMaxDistance: number;
  layerNormEpsilon: number;
  feedForwardProj: string;
  /** The activation transformers actually runs (config `dense_act_fn`, else derived from feed_forward_proj). */
  denseActFn: T5Activation;
  /** Gated FFN (wi_0, wi_1, wo) rather than (wi, wo). */
  isGatedAct: boolean;
}

/** Model types whose encoder is exactly this graph (mT5 reuses the T5 modules unchanged). */
const MODEL_TYPES = ["t5", "mt5"];

/**
 * Validates a text_encoder/config.json the way transformers' T5Config would read it: absent fields take
 * T5Config's defaults, and every value that would break (or silently garble) the model later fails here.
 */
export function parseT5Config(raw: RawConfig, file: string): T5Config {
  const c = new ConfigReader(raw, file);
  if (c.has("model_type")) c.string("model_type", undefined, MODEL_TYPES);
  const dModel = c.int("d_model", 512);
  const dKv = c.int("d_kv", 64);
  const numHeads = c.int("num_heads", 8);
  const numBuckets = c.int("relative_attention_num_buckets", 32);
  // Bidirectional buckets: half per direction, half of those exact. Fewer than 4 makes torch divide by zero.
  c.require(numBuckets >= 4, "relative_attention_num_buckets", `expected at least 4 buckets, found ${numBuckets}`);
  const maxExact = Math.floor(Math.floor(numBuckets / 2) / 2);
  const maxDistance = c.int("relative_attention_max_distance", 128);
  // log(max_distance / max_exact) is the divisor of the logarithmic buckets: it must be positive.
  c.require(maxDistance > maxExact, "relative_attention_max_distance",
    `expected more than ${maxExact} (the exact buckets for ${numBuckets} buckets), found ${maxDistance}`);
  const { feedForwardProj, denseActFn, isGatedAct } = parseFeedForward(c);
  return {
    vocabSize: c.int("vocab_size", 32128),
    dModel,
    dKv,
    numHeads,
    dFf: c.int("d_ff", 2048),
    numLayers: c.int("num_layers", 6),
    relativeAttentionNumBuckets: numBuckets,
    relativeAttentionMaxDistance: maxDistance,
    layerNormEpsilon: c.number("layer_norm_epsilon", 1e-6, { min: 0 }),
    feedForwardProj,
    denseActFn,
    isGatedAct,
  };
}

/**
 * `feed_forward_proj` is "gated-ACT" or "ACT". transformers derives `dense_act_fn` and `is_gated_act` from it
 * ("gated-gelu" means gelu_new) but lets stored values of those two fields win; a stored value that disagrees
 * with feed_forward_proj would make it look for other weights, so a disagreement is refused.
 */
function parseFeedForward(c: ConfigReader): { feedForwardProj: string; denseActFn: T5Activation; isGatedAct: boolean } {
  const feedForwardProj = c.string<string>("feed_forward_proj", "relu");
  const parts = feedForwardProj.split("-");
  if (parts.length > 2 || (parts.length === 2 && parts[0] !== "gated")) {
    c.fail("feed_forward_proj", `"gated-{ACT}" or "{ACT}" (e.g. "gated-gelu" or "relu")`, feedForwardProj);
  }
  const gated = parts[0] === "gated" && parts.length === 2;
  const derivedAct = feedForwardProj === "gated-gelu" ? "gelu_new" : parts[parts.length - 1];
  const isGatedAct = c.boolean("is_gated_act", gated);
  c.require(isGatedAct === gated, "is_gated_act",
    `is_gated_act ${isGatedAct} contradicts feed_forward_proj ${JSON.stringify(feedForwardProj)}`);
  const act = c.string<string>("dense_act_fn", derivedAct);
  c.require(act === derivedAct, "dense_act_fn",
    `dense_act_fn ${JSON.stringify(act)} contradicts feed_forward_proj ${JSON.stringify(feedForwardProj)} (which means ${JSON.stringify(derivedAct)})`);
  if (!(T5_ACTIVATIONS as readonly string[]).includes(act)) {
    const field = c.has("dense_act_fn") ? "dense_act_fn" : "feed_forward_proj";
    c.fail(field, `an activation this graph implements (${T5_ACTIVATIONS.join(", ")})`, c.raw[field]);
  }
  return { feedForwardProj, denseActFn: act as T5Activation, isGatedAct };
}

/**
 * transformers' bidirectional relative-position bucket of `rel` = key index − query index.
 *
 * torch evaluates the logarithmic buckets in float32 (log of a float32 ratio, divided by float32(ln(max/exact)),
 * times an integer, truncated), and at an exact-integer boundary the rounding decides the bucket: with 18
 * buckets and max distance 128, double precision would put |rel| = 8, 16 and 64 one bucket lower than torch.
 * So each step is rounded to float32 here (Math.log rounded once more to float32, i.e. a correctly rounded
 * logf). torch's own logf (MKL/Sleef) is not always correctly rounded, so for a few unusual pairs an exact
 * boundary falls the other way in torch (of 22,474 pairs with 4–80 buckets, |rel| ≤ 1024: 6 pairs, one |rel|
 * each, e.g. 34 buckets / 27 at |rel| 12); the unit test checks the pairs in use against torch.
 */
export function relativePositionBucket(rel: number, numBuckets: number, maxDistance: number): number {
  const half = Math.floor(numBuckets / 2);
  const maxExact = Math.floor(half / 2);
  const n = Math.abs(rel);
  const base = rel > 0 ? half : 0;
  if (n < maxExact) return base + n;
  const f = Math.fround;
  const scaled = f(f(f(Math.log(f(n / maxExact))) / f(Math.log(maxDistance / maxExact))) * (half - maxExact));
  return base + Math.min(maxExact + Math.trunc(scaled), half - 1);
}

/** The [length, length] bucket table (row = query, column = key), row-major int64 for the graph input. */
export function relativePositionBuckets(length: number, numBuckets: number, maxDistance: number): BigInt64Array {
  const byRel = new Map<number, bigint>();
  const out = new BigInt64Array(length * length);
  for (let q = 0; q < length; q++) {
    for (let k = 0; k < length; k++) {
      const rel = k - q;
      let b = byRel.get(rel);
      if (b === undefined) byRel.set(rel, (b = BigInt(relativePositionBucket(rel, numBuckets, maxDistance))));
      out[q * length + k] = b;
    }
  }
  return out;
}

/**
 * One bias-free torch `nn.Linear` (weight [out, in]). Every projection of the encoder goes through this, so a
 * quantized variant swaps the whole model's matmuls by passing another function.
 */
export type T5LinearFn = (g: GraphBuilder, x: Value, prefix: string, shape: [out: number, inp: number]) => Value;

const fp32Linear: T5LinearFn = (g, x, prefix, shape) => linear(g, x, prefix, { bias: false, shape });

export interface T5GraphOptions {
  linear?: T5LinearFn;
}

/** The tied embedding is stored as `shared.weight`; older exports may hold only the encoder's copy. */
const EMBEDDING_ALIASES = { "shared.weight": "encoder.embed_tokens.weight" };

export function buildT5EncoderGraph(config: T5Config, weights: WeightSource, opts: T5GraphOptions = {}): BuiltModel {
  const source = withAliases(weights, EMBEDDING_ALIASES);
  const g = new GraphBuilder("t5_encoder", source);
  const lin = opts.linear ?? fp32Linear;
  const inputIds = g.input("input_ids", "int64", ["batch", "seq"]);
  const attentionMask = g.input("attention_mask", "int64", ["batch", "seq"]);
  const buckets = g.input("position_buckets", "int64", ["seq", "seq"]);

  // No √d_model scaling of the embeddings in T5.
  let h = embed(g, source, inputIds, config);
  const bias = attentionBias(g, buckets, attentionMask, config);
  for (let i = 0; i < config.numLayers; i++) {
    const block = `encoder.block.${i}`;
    h = g.op("Add", [h, selfAttention(g, t5LayerNorm(g, h, `${block}.layer.0.layer_norm`, config), bias, `${block}.layer.0.SelfAttention`, config, lin)]);
    h = g.op("Add", [h, feedForward(g, t5LayerNorm(g, h, `${block}.layer.1.layer_norm`, config), `${block}.layer.1.DenseReluDense`, config, lin)]);
  }
  h = t5LayerNorm(g, h, "encoder.final_layer_norm", config);
  g.output(h, "last_hidden_state", "float32", ["batch", "seq", config.dModel]);
  return g.build();
}

/** A row gather from the table as stored; a 16-bit table is cast after the gather, not as a whole. */
function embed(g: GraphBuilder, weights: WeightSource, ids: Value, config: T5Config): Value {
  const name = "shared.weight";
  const table = g.rawWeight(name, [config.vocabSize, config.dModel]);
  const rows = g.op("Gather", [table, ids], { axis: 0 }, { name: "embed_tokens" });
  return weights.get(name).dtype === "F32" ? rows : g.op("Cast", [rows], { to: OnnxType.FLOAT }, { name: "embed_tokens/cast" });
}

/**
 * Position bias of block 0 (shared by all blocks) with the padding mask folded in, as transformers' sdpa path
 * builds it: where(key kept, bias, finfo(float32).min). Masked keys get probability 0; padded query rows still
 * attend to the kept keys, exactly as in torch. [B, heads, L, L], fed to every MultiHeadAttention.
 */
function attentionBias(g: GraphBuilder, buckets: Value, mask: Value, config: T5Config): Value {
  const table = g.weight("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
    [config.relativeAttentionNumBuckets, config.numHeads]);
  const perPair = g.op("Gather", [table, buckets], { axis: 0 }, { name: "relative_attention_bias" }); // [L, L, H]
  const position = g.op("Unsqueeze", [g.op("Transpose", [perPair], { perm: [2, 0, 1] }), g.constI64([0])]); // [1, H, L, L]
  const keep = g.op("Unsqueeze", [g.op("Cast", [mask], { to: OnnxType.BOOL }), g.constI64([1, 2])]); // [B, 1, 1, L]
  return g.op("Where", [keep, position, g.constF32(-3.4028234663852886e38)], {}, { name: "attention_bias" });
}

/** T5LayerNorm: x · rsqrt(mean(x²) + eps) · w in fp32, no mean subtraction and no bias (ORT's RMSNorm op). */
function t5LayerNorm(g: GraphBuilder, x: Value, prefix: string, config: T5Config): Value {
  const w = g.weight(`${prefix}.weight`, [config.dModel]);
  return g.op("SimplifiedLayerNormalization", [x, w], { axis: -1, epsilon: float(config.layerNormEpsilon) }, { name: `${prefix}/rms` });
}

/** T5Attention without 1/√d scaling (T5 folds it into the initialisation), plus the shared bias. */
function selfAttention(g: GraphBuilder, x: Value, bias: Value, prefix: string, config: T5Config, lin: T5LinearFn): Value {
  const inner = config.numHeads * config.dKv;
  const [q, k, v] = ["q", "k", "v"].map((p) => lin(g, x, `${prefix}.${p}`, [inner, config.dModel]));
  const a = multiHeadAttention(g, q, k, v, config.numHeads, { attentionBias: bias, scale: 1 });
  return lin(g, a, `${prefix}.o`, [config.dModel, inner]);
}

/** T5DenseGatedActDense (act(wi_0 x) · wi_1 x → wo) or T5DenseActDense (act(wi x) → wo); no biases. */
function feedForward(g: GraphBuilder, x: Value, prefix: string, config: T5Config, lin: T5LinearFn): Value {
  const up: [number, number] = [config.dFf, config.dModel];
  const hidden = config.isGatedAct
    ? g.op("Mul", [activation(g, lin(g, x, `${prefix}.wi_0`, up), config.denseActFn), lin(g, x, `${prefix}.wi_1`, up)])
    : activation(g, lin(g, x, `${prefix}.wi`, up), config.denseActFn);
  return lin(g, hidden, `${prefix}.wo`, [config.dModel, config.dFf]);
}

function activation(g: GraphBuilder, x: Value, act: T5Activation): Value {
  switch (act) {
    case "relu": return g.op("Relu", [x]);
    case "gelu": return g.op("Gelu", [x]); // exact (erf) GELU
    case "gelu_new":
    case "gelu_pytorch_tanh": return geluTanh(g, x);
    case "silu":
    case "swish": return silu(g, x);
  }
}

export interface T5EncoderLoadOptions extends SessionConfig, WeightOptions, T5GraphOptions, QuantizeLoadOptions {}

/** A general (prefix, {bias, shape}) linear function as the T5 graph's bias-free one. */
const asT5Linear = (lin: LinearFn): T5LinearFn => (g, x, prefix, shape) => lin(g, x, prefix, { bias: false, shape });

export interface T5EncoderInput {
  /** [B, L] token ids in [0, vocab_size). */
  inputIds: Tensor<BigInt64Array>;
  /** [B, L] 1 = token, 0 = padding. */
  attentionMask: Tensor<BigInt64Array>;
}

export class T5EncoderModel extends OrtModel {
  private readonly bucketCache = new Map<number, BigInt64Array>();
  /** Set when loaded with `quantize`: the method, the cached file, and whether it was a cache hit. */
  quantization?: QuantizationReport;

  private constructor(readonly config: T5Config, built: BuiltModel, session: ModelSession) {
    super("T5EncoderModel", built, session);
  }

  /** Loads `<textEncoderDir>/config.json` and its weights (model.safetensors or a sharded index). */
  static async fromPretrained(textEncoderDir: string, opts: T5EncoderLoadOptions = {}): Promise<T5EncoderModel> {
    const configFile = path.join(textEncoderDir, "config.json");
    const config = parseT5Config(await readJsonObject(configFile), configFile);
    const weights = await openWeights(textEncoderDir, { variant: opts.variant, allowSymlinksOutside: opts.allowSymlinksOutside });
    if (opts.quantize === undefined) return T5EncoderModel.fromWeights(config, weights, opts);
    const q = await prepareQuantized(weights, (lin) => buildT5EncoderGraph(config, weights, { linear: asT5Linear(lin) }),
      { ...opts, label: "text_encoder" });
    const model = await T5EncoderModel.fromWeights(config, q.weights, { ...q.session(opts), linear: asT5Linear(q.linear) });
    model.quantization = q.report;
    return model;
  }

  static async fromWeights(config: T5Config, weights: WeightSource, opts: SessionConfig & T5GraphOptions & WeightCheckOptions = {}): Promise<T5EncoderModel> {
    const built = buildT5EncoderGraph(config, weights, opts);
    await OrtModel.checkWeights([built], opts);
    return new T5EncoderModel(config, built, await OrtModel.createSession(built, opts));
  }

  async forward(input: T5EncoderInput): Promise<Tensor> {
    const { inputIds, attentionMask } = input;
    const [batch, length] = inputIds.dims;
    this.check(inputIds.dims.length === 2 && batch > 0 && length > 0 && inputIds.data.length === batch * length,
      "inputIds", "[batch, length] with batch, length ≥ 1", inputIds.dims);
    this.check(attentionMask.dims.length === 2 && attentionMask.dims[0] === batch && attentionMask.dims[1] === length &&
      attentionMask.data.length === batch * length, "attentionMask", `[${batch}, ${length}] like inputIds`, attentionMask.dims);
    const badId = inputIds.data.findIndex((id) => id < 0n || id >= BigInt(this.config.vocabSize));
    if (badId >= 0) throw new T5InputError("inputIds", `ids in [0, ${this.config.vocabSize})`, `${inputIds.data[badId]} at index ${badId}`);
    const badMask = attentionMask.data.findIndex((m) => m !== 0n && m !== 1n);
    if (badMask >= 0) throw new T5InputError("attentionMask", "0 or 1", `${attentionMask.data[badMask]} at index ${badMask}`);

    const out = await this.run({
      input_ids: toOrt(inputIds),
      attention_mask: toOrt(attentionMask),
      position_buckets: new ort.Tensor("int64", this.buckets(length), [length, length]),
    });
    return fromOrt(out.last_hidden_state);
  }

  private buckets(length: number): BigInt64Array {
    let table = this.bucketCache.get(length);
    if (!table) {
      table = relativePositionBuckets(length, this.config.relativeAttentionNumBuckets, this.config.relativeAttentionMaxDistance);
      this.bucketCache.set(length, table);
    }
    return table;
  }

  private check(ok: boolean, argument: string, expected: string, dims: readonly number[]): void {
    if (!ok) throw new T5InputError(argument, expected, `shape [${dims.join(", ")}]`);
  }
}

export class T5InputError extends Error {
  override name = "T5InputError";
  constructor(readonly argument: string, expected: string, found: string) {
    super(`T5EncoderModel.forward: ${argument} must be ${expected}, got ${found}`);
  }
}
