/**
 * PixArtTransformer2DModel (diffusers), the PixArt-Σ diffusion transformer, as an ONNX graph.
 *
 * Forward pass, in order: patch embedding + 2-D sin-cos positions → timestep embedding (AdaLayerNormSingle)
 * → caption projection → N × transformer block (adaLN-modulated self-attention, un-normed cross-attention,
 * adaLN-modulated feed-forward) → final modulation → proj_out → unpatchify.
 * The positional table is computed here in TypeScript (float64, like diffusers) and fed as an input, so one
 * session serves every resolution.
 */
import * as path from "path";
import { openWeights, type WeightOptions } from "../io/checkpoint";
import { readJsonObject } from "../io/json";
import type { WeightCheckOptions } from "../io/weight-scan";
import type { WeightSource } from "../io/types";
import { GraphBuilder, type BuiltModel, type Value } from "../onnx/graph";
import { chunk, concatShape, dim, geluTanh, layerNorm, linear as fp32Linear, multiHeadAttention, reshape, silu, transpose } from "../onnx/ops";
import type { Device } from "../onnx/device";
import type { ModelSession, SessionConfig } from "../onnx/session";
import { ConfigReader, type RawConfig } from "./config-fields";
import { ModelReleasedError, OrtModel, fromOrt, toOrt, type Tensor } from "./model";
import { checkCrossAttentionLayers, crossAttentionOutputName, CrossAttentionOptionError, CrossAttentionProbe, ATTENTION_ROW_START }
  from "./pixart-transformer-2d-attention";
import type { LinearFn } from "./quantize";
import { CacheOptionError, ForaGraphCache, ForaStepCache, parseCacheConfig, type TransformerCacheConfig } from "./pixart-transformer-2d-cache";
import { firstTokens, padLastAxis, TextKeysValuesCache, validTextLength } from "./pixart-transformer-2d-text";
import { buildPixArtDenoiseLoopGraph, PLAN_FIELDS, type LinearStepPlan } from "./pixart-denoise-loop";
import { prepareQuantized, type QuantizationReport, type QuantizeLoadOptions } from "./quantized-cache";
import * as ort from "onnxruntime-node";

export interface PixArtTransformer2DConfig {
  numAttentionHeads: number;
  attentionHeadDim: number;
  /** heads × head dim: the token width. */
  innerDim: number;
  inChannels: number;
  outChannels: number;
  numLayers: number;
  /** Latent size the checkpoint was trained at (positions are exact there, interpolated elsewhere). */
  sampleSize: number;
  patchSize: number;
  interpolationScale: number;
  /** Width of the text embeddings fed in; null when there is no caption projection. */
  captionChannels: number | null;
  crossAttentionDim: number;
  activationFn: "gelu-approximate" | "gelu";
  normEps: number;
  ffInnerDim: number;
}

/** Accepts what diffusers accepts for PixArt-Σ and refuses, at load, what diffusers would only fail on later. */
export function parsePixArtTransformerConfig(raw: RawConfig, file: string): PixArtTransformer2DConfig {
  const c = new ConfigReader(raw, file);
  const className = c.string("_class_name", "PixArtTransformer2DModel");
  c.require(["PixArtTransformer2DModel", "Transformer2DModel"].includes(className), "_class_name",
    `expected "PixArtTransformer2DModel" or "Transformer2DModel", found "${className}"`);
  c.string("norm_type", "ada_norm_single", ["ada_norm_single"]);
  c.require(c.has("num_embeds_ada_norm") || !("num_embeds_ada_norm" in raw), "num_embeds_ada_norm",
    "must not be null for norm_type \"ada_norm_single\" (diffusers refuses it too)");
  c.require(!c.has("use_additional_conditions") || c.boolean("use_additional_conditions") === false, "use_additional_conditions",
    "PixArt-α resolution/aspect-ratio micro-conditioning is not supported; PixArt-Σ checkpoints set it to false");
  c.require(!c.boolean("norm_elementwise_affine", false), "norm_elementwise_affine", "only false (PixArt's parameter-free LayerNorms) is supported");
  c.string("attention_type", "default", ["default"]);
  c.boolean("attention_bias", true);

  const heads = c.int("num_attention_heads", 16);
  const headDim = c.int("attention_head_dim", 72);
  const innerDim = heads * headDim;
  // The default image side is sample_size × 8; 2048 keeps it within the pipeline's 16384-pixel limit.
  const sampleSize = c.int("sample_size", 128, 1, 2048);
  const inChannels = c.int("in_channels", 4);
  const captionChannels = c.has("caption_channels") ? c.int("caption_channels") : null;
  const crossAttentionDim = c.int("cross_attention_dim", 1152);
  if (captionChannels !== null) {
    // The caption projection outputs innerDim features, which attn2's key/value projections then read.
    c.require(crossAttentionDim === innerDim, "cross_attention_dim",
      `must equal num_attention_heads × attention_head_dim = ${heads} × ${headDim} = ${innerDim}, found ${crossAttentionDim}`);
  }
  return {
    numAttentionHeads: heads,
    attentionHeadDim: headDim,
    innerDim,
    inChannels,
    outChannels: c.has("out_channels") ? c.int("out_channels") : inChannels,
    numLayers: c.int("num_layers", 28),
    sampleSize,
    patchSize: c.int("patch_size", 2),
    interpolationScale: c.has("interpolation_scale")
      ? c.number("interpolation_scale", undefined, { min: Number.MIN_VALUE })
      : Math.max(Math.floor(sampleSize / 64), 1),
    captionChannels,
    crossAttentionDim,
    activationFn: c.string("activation_fn", "gelu-approximate", ["gelu-approximate", "gelu"] as const),
    normEps: c.number("norm_eps", 1e-6, { min: 0 }),
    ffInnerDim: 4 * innerDim,
  };
}

/** Sinusoid frequencies of diffusers' `get_timestep_embedding` for 256 channels, in float32 like torch. */
function timestepFrequencies(half: number): Float32Array {
  const negLog = Math.fround(-Math.log(10000));
  return Float32Array.from({ length: half }, (_, k) => Math.fround(Math.exp(Math.fround(Math.fround(negLog * k) / half))));
}

export interface PixArtGraphOptions {
  /** Replaces `linear` from onnx/ops for every nn.Linear (a quantized variant passes its own). */
  linear?: LinearFn;
  /**
   * Blocks whose head-mean cross-attention probabilities become extra outputs: the attention-map variant
   * (pixart-transformer-2d-attention.ts). Absent in the default graph, which then has none of those nodes.
   */
  crossAttentionLayers?: readonly number[];
  /**
   * What the graph reads the prompt as. "embeddings" (default): the T5 features, from which it computes the
   * caption projection and every block's cross-attention keys and values itself. "keys-values": those keys and
   * values (inputs `textKeyName(i)` / `textValueName(i)`, made by buildPixArtTextGraph), so that a denoising step
   * does not recompute what depends on the prompt only.
   */
  text?: "embeddings" | "keys-values";
  /**
   * FORA step caching (pixart-transformer-2d-cache.ts): "save" also outputs every block's un-gated self-attention and
   * feed-forward outputs, "reuse" takes them as inputs and skips computing them. Absent in the default graph.
   */
  cache?: "save" | "reuse";
  /**
   * false: every row takes the ordinary cross-attention path, even rows that keep a single key (crossAttention).
   * For tests and A/B benchmarks only; the two agree to float rounding.
   */
  singleKeyShortcut?: boolean;
}

/** Graph input (step graph) and output (text graph) holding block `layer`'s cross-attention keys, [B, L, inner dim]. */
export function textKeyName(layer: number): string {
  return `text_key.${layer}`;
}

/** As textKeyName, for the values. */
export function textValueName(layer: number): string {
  return `text_value.${layer}`;
}

export function buildPixArtTransformerGraph(config: PixArtTransformer2DConfig, weights: WeightSource, opts: PixArtGraphOptions = {}): BuiltModel {
  const linear = opts.linear ?? fp32Linear;
  const g = new GraphBuilder("pixart_transformer_2d", weights);
  const hiddenStates = g.input("hidden_states", "float32", ["batch", config.inChannels, "height", "width"]);
  let keysValues: PixArtKeysValues | undefined;
  let encoderHiddenStates: Value | undefined;
  if (opts.text === "keys-values") {
    const kv = (name: (i: number) => string) => Array.from({ length: config.numLayers }, (_, i) => g.input(name(i), "float32", ["batch", "text_len", config.innerDim]));
    keysValues = { keys: kv(textKeyName), values: kv(textValueName) };
  } else {
    encoderHiddenStates = g.input("encoder_hidden_states", "float32", ["batch", "text_len", config.captionChannels ?? config.crossAttentionDim]);
  }
  const encoderMask = g.input("encoder_attention_mask", "int64", ["batch", "text_len"]);
  const timestep = g.input("timestep", "float32", ["batch"]);
  const posEmbed = g.input("pos_embed", "float32", [1, "tokens", config.innerDim]);

  const embedded = pixartEmbed(g, config, linear, { hiddenStates, timestep, posEmbed });
  // The attention-map probe reads every row's queries, so its graph keeps every row on the ordinary path.
  const shortcut = opts.singleKeyShortcut !== false && !opts.crossAttentionLayers;
  const text = keysValues ? maskContext(g, keysValues, encoderMask, shortcut) : pixartTextContext(g, config, linear, encoderHiddenStates!, encoderMask, shortcut);
  const probe = opts.crossAttentionLayers
    ? new CrossAttentionProbe(g, opts.crossAttentionLayers, config.numAttentionHeads, config.attentionHeadDim, encoderMask)
    : undefined;
  const cache = opts.cache ? new ForaGraphCache(g, opts.cache, config.innerDim) : undefined;
  const out = pixartBlocksAndOutput(g, config, linear, hiddenStates, embedded, text, probe, cache);
  g.output(out, "sample", "float32", ["batch", config.outChannels, "height", "width"]);
  return g.build();
}

/** The per-step inputs of a forward pass, as values of a graph under construction. */
export interface PixArtStepValues {
  /** [B, inChannels, H, W] latents. */
  hiddenStates: Value;
  /** float32 [B]. */
  timestep: Value;
  /** [1, tokens, innerDim] positional table. */
  posEmbed: Value;
}

/** Image tokens and the timestep conditioning of one forward pass. */
export interface PixArtEmbedded {
  /** [B, tokens, innerDim] patch tokens plus positions. */
  tokens: Value;
  /** [B, 6, innerDim]: the six modulation vectors every block adds to its scale-shift table. */
  t6: Value;
  /** [B, innerDim] timestep embedding (the final layer's modulation). */
  tEmb: Value;
}

/** Every block's cross-attention keys and values, [B, L, innerDim] each (index = block). */
export interface PixArtKeysValues {
  keys: Value[];
  values: Value[];
}

/**
 * What cross-attention reads. It depends on neither the latents nor the timestep, so a denoising loop in one graph
 * (pixart-denoise-loop.ts) computes it once, outside its loop, and PixArtTransformer2DModel once per prompt (the
 * text graph).
 */
export interface PixArtTextContext extends PixArtKeysValues {
  /** int32 [B, L]: 1 keeps a key. */
  keyPaddingMask: Value;
  /** int64 [1]: how many leading rows attend to a single key (leadingSingleKeyRows); absent: none taken apart. */
  singleKeyRows?: Value;
}

/** PatchEmbed and AdaLayerNormSingle: the parts of the forward pass that read the latents and the timestep first. */
export function pixartEmbed(g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, step: PixArtStepValues): PixArtEmbedded {
  const { innerDim: d, patchSize: p } = config;
  // PatchEmbed: a p×p stride-p convolution, tokens in row-major patch order, plus the positional table.
  const patches = g.op("Conv", [step.hiddenStates, g.weight("pos_embed.proj.weight", [d, config.inChannels, p, p]), g.weight("pos_embed.proj.bias", [d])],
    { kernel_shape: [p, p], strides: [p, p] }, { name: "pos_embed.proj" });
  const tokens = g.op("Add", [transpose(g, reshape(g, patches, [0, d, -1]), [0, 2, 1]), step.posEmbed]);

  // AdaLayerNormSingle: sinusoid [cos | sin] → MLP → tEmb; SiLU → linear → six modulation vectors per block.
  const freqs = g.constF32(timestepFrequencies(128), [1, 128]);
  const args = g.op("Mul", [g.op("Unsqueeze", [step.timestep, g.constI64([1])]), freqs]);
  const sinusoid = g.op("Concat", [g.op("Cos", [args]), g.op("Sin", [args])], { axis: 1 });
  const te = "adaln_single.emb.timestep_embedder";
  const tEmb = linear(g, silu(g, linear(g, sinusoid, `${te}.linear_1`, { shape: [d, 256] })), `${te}.linear_2`, { shape: [d, d] });
  const t6 = reshape(g, linear(g, silu(g, tEmb), "adaln_single.linear", { shape: [6 * d, d] }), [0, 6, d]);
  return { tokens, t6, tEmb };
}

/**
 * Everything cross-attention reads: every block's keys and values (pixartKeysValues), the key mask and, unless
 * `singleKeyShortcut` is false, the count of leading single-key rows (crossAttention).
 */
export function pixartTextContext(
  g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, encoderHiddenStates: Value, encoderMask: Value, singleKeyShortcut = true,
): PixArtTextContext {
  return maskContext(g, pixartKeysValues(g, config, linear, encoderHiddenStates), encoderMask, singleKeyShortcut);
}

/** Adds what the blocks read from the mask to the prompt's keys and values. */
function maskContext(g: GraphBuilder, keysValues: PixArtKeysValues, encoderMask: Value, singleKeyShortcut: boolean): PixArtTextContext {
  const singleKeyRows = singleKeyShortcut ? leadingSingleKeyRows(g, encoderMask) : undefined;
  return { ...keysValues, keyPaddingMask: keyPaddingMask(g, encoderMask), singleKeyRows };
}

/**
 * Caption projection (T5 features → token width, padding positions too; the mask removes them later), then each
 * block's cross-attention key and value projections.
 */
export function pixartKeysValues(g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, encoderHiddenStates: Value): PixArtKeysValues {
  const d = config.innerDim;
  let text = encoderHiddenStates;
  if (config.captionChannels !== null) {
    const h = geluTanh(g, linear(g, text, "caption_projection.linear_1", { shape: [d, config.captionChannels] }));
    text = linear(g, h, "caption_projection.linear_2", { shape: [d, d] });
  }
  const blocks = Array.from({ length: config.numLayers }, (_, i) => `transformer_blocks.${i}.attn2`);
  return {
    keys: blocks.map((b) => linear(g, text, `${b}.to_k`, { shape: [d, config.crossAttentionDim] })),
    values: blocks.map((b) => linear(g, text, `${b}.to_v`, { shape: [d, config.crossAttentionDim] })),
  };
}

/** onnxruntime adds its mask_filter_value (−10000, as diffusers) to the scores of keys whose mask is 0. */
function keyPaddingMask(g: GraphBuilder, encoderMask: Value): Value {
  return g.op("Cast", [encoderMask], { to: 6 /* int32 */ });
}

/**
 * int64 [1]: the number of leading batch rows whose mask keeps exactly one key, the first (with guidance and
 * diffusers' default empty negative prompt, the unconditional half: "" is the single token </s>), at most B − 1.
 * Cross-attention in such a row needs neither its queries nor its probabilities (see crossAttention). The first
 * row that does not qualify is found with ArgMin over [qualifies…, 0]; B − 1 keeps the other path non-empty.
 */
export function leadingSingleKeyRows(g: GraphBuilder, encoderMask: Value): Value {
  const one = g.constI64([1]);
  const kept = g.op("ReduceSum", [encoderMask, one], { keepdims: 0 });
  const first = g.op("Squeeze", [g.op("Slice", [encoderMask, g.constI64([0]), one, one]), one]);
  const single = g.op("And", [g.op("Equal", [kept, one]), g.op("Equal", [first, one])]);
  const flags = g.op("Concat", [g.op("Cast", [single], { to: 7 /* int64 */ }), g.constI64([0])], { axis: 0 });
  const leading = g.op("ArgMin", [flags], { axis: 0, keepdims: 1 });
  return g.op("Min", [leading, g.op("Sub", [dim(g, encoderMask, 0), one])]);
}

/**
 * The prompt's part of the transformer (pixartKeysValues) as a graph of its own: input `encoder_hidden_states`,
 * outputs `textKeyName(i)` / `textValueName(i)`, which a graph built with `text: "keys-values"` takes. None of it
 * depends on the latents or the timestep, so PixArtTransformer2DModel runs it once per prompt.
 */
export function buildPixArtTextGraph(config: PixArtTransformer2DConfig, weights: WeightSource, opts: Pick<PixArtGraphOptions, "linear"> = {}): BuiltModel {
  const g = new GraphBuilder("pixart_transformer_2d_text", weights);
  const embeds = g.input("encoder_hidden_states", "float32", ["batch", "text_len", config.captionChannels ?? config.crossAttentionDim]);
  const { keys, values } = pixartKeysValues(g, config, opts.linear ?? fp32Linear, embeds);
  keys.forEach((k, i) => g.output(k, textKeyName(i), "float32", ["batch", "text_len", config.innerDim]));
  values.forEach((v, i) => g.output(v, textValueName(i), "float32", ["batch", "text_len", config.innerDim]));
  return g.build();
}

/** The transformer blocks, the final modulation, proj_out and unpatchify: `sample` [B, outChannels, H, W]. */
export function pixartBlocksAndOutput(
  g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, hiddenStates: Value, embedded: PixArtEmbedded, context: PixArtTextContext,
  probe?: CrossAttentionProbe, cache?: ForaGraphCache,
): Value {
  const { innerDim: d, patchSize: p, outChannels } = config;
  let x = embedded.tokens;
  for (let i = 0; i < config.numLayers; i++) {
    const onCrossAttention = probe && ((q: Value, k: Value) => probe.record(i, q, k));
    // A probe reads every row's queries: with one, every row takes the ordinary path whatever the context holds.
    const text = { k: context.keys[i], v: context.values[i], keyPaddingMask: context.keyPaddingMask, singleKeyRows: probe ? undefined : context.singleKeyRows };
    const blockCache = cache && { attention: (f: () => Value) => cache.attention(i, f), feedForward: (f: () => Value) => cache.feedForward(i, f) };
    x = transformerBlock(g, config, linear, `transformer_blocks.${i}`, x, text, embedded.t6, onCrossAttention, blockCache);
  }

  // Final layer: shift/scale from tEmb (not from t6), then the per-patch projection.
  const finalMod = g.op("Add", [g.weight("scale_shift_table", [2, d]), g.op("Unsqueeze", [embedded.tEmb, g.constI64([1])])]);
  const [shift, scale] = chunk(g, finalMod, 2, 1);
  x = modulate(g, layerNorm(g, x, d, 1e-6), shift, scale);
  x = linear(g, x, "proj_out", { shape: [p * p * outChannels, d] });

  // Unpatchify: token (i, j), channel (a, b, c) → pixel (c, i·p + a, j·p + b).
  const pConst = g.constI64([p]);
  const hp = g.op("Div", [dim(g, hiddenStates, 2), pConst]);
  const wp = g.op("Div", [dim(g, hiddenStates, 3), pConst]);
  const grid = reshape(g, x, concatShape(g, [-1, hp, wp, p, p, outChannels]));
  const pixels = transpose(g, grid, [0, 5, 1, 3, 2, 4]);
  return reshape(g, pixels, concatShape(g, [-1, outChannels, g.op("Mul", [hp, pConst]), g.op("Mul", [wp, pConst])]));
}

/** x·(1 + scale) + shift, in diffusers' order of operations. */
function modulate(g: GraphBuilder, x: Value, shift: Value, scale: Value): Value {
  return g.op("Add", [g.op("Mul", [x, g.op("Add", [scale, g.constF32(1)])]), shift]);
}

function transformerBlock(
  g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, prefix: string, x: Value, text: BlockText, t6: Value,
  onCrossAttention?: (q: Value, k: Value) => void, cache?: BlockCache,
): Value {
  const d = config.innerDim;
  const mod = g.op("Add", [g.weight(`${prefix}.scale_shift_table`, [6, d]), t6]);
  const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = chunk(g, mod, 6, 1);
  const cached = (f: keyof BlockCache, compute: () => Value) => (cache ? cache[f](compute) : compute());

  // Un-gated, so that a step reusing it (FORA) applies its own gate.
  const selfAttention = cached("attention", () => {
    const n1 = modulate(g, layerNorm(g, x, d, config.normEps), shiftMsa, scaleMsa);
    const self = { k: linear(g, n1, `${prefix}.attn1.to_k`, { shape: [d, d] }), v: linear(g, n1, `${prefix}.attn1.to_v`, { shape: [d, d] }) };
    return attention(g, config, linear, `${prefix}.attn1`, n1, self);
  });
  x = g.op("Add", [g.op("Mul", [gateMsa, selfAttention]), x]);

  // PixArt's cross-attention reads the residual stream directly: no norm, no gate. Its keys and values come from
  // the prompt only (pixartKeysValues).
  x = text.singleKeyRows ? crossAttention(g, config, linear, `${prefix}.attn2`, x, text, text.singleKeyRows)
    : g.op("Add", [attention(g, config, linear, `${prefix}.attn2`, x, text, text.keyPaddingMask, onCrossAttention), x]);

  const h = cached("feedForward", () => {
    const n2 = modulate(g, layerNorm(g, x, d, config.normEps), shiftMlp, scaleMlp);
    const ff = `${prefix}.ff.net`;
    let y = linear(g, n2, `${ff}.0.proj`, { shape: [config.ffInnerDim, d] });
    y = config.activationFn === "gelu-approximate" ? geluTanh(g, y) : g.op("Gelu", [y]);
    return linear(g, y, `${ff}.2`, { shape: [d, config.ffInnerDim] });
  });
  return g.op("Add", [g.op("Mul", [gateMlp, h]), x]);
}

/** One block's view of a ForaGraphCache. */
interface BlockCache {
  attention(compute: () => Value): Value;
  feedForward(compute: () => Value): Value;
}

/** One block's keys and values for an attention, [B, L, inner dim] each. */
interface KeysValues {
  k: Value;
  v: Value;
}

/** One block's view of the prompt: its cross-attention keys and values, the mask, and the single-key row count. */
interface BlockText extends KeysValues {
  keyPaddingMask: Value;
  singleKeyRows?: Value;
}

/** diffusers' Attention with its key/value projections already applied: to_q, attention, to_out. */
function attention(
  g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, prefix: string, x: Value, { k, v }: KeysValues, keyPaddingMask?: Value,
  onProjections?: (q: Value, k: Value) => void,
): Value {
  const d = config.innerDim;
  const q = linear(g, x, `${prefix}.to_q`, { shape: [d, d] });
  const o = multiHeadAttention(g, q, k, v, config.numAttentionHeads, { keyPaddingMask });
  onProjections?.(q, k);
  return linear(g, o, `${prefix}.to_out.0`, { shape: [d, d] });
}

/**
 * Cross-attention plus the residual, x + attn2(x), with the first `singleKeyRows` rows (int64 [1]) taken apart.
 *
 * A row whose mask keeps one key, the first: diffusers adds −10000 to the other keys' scores, so their softmax
 * weights are exp(−10000 + …) = 0 in float32 and the kept key's is exactly 1, whatever the queries. That row's
 * attention output is its first value vector at every image token, and to_out of it is one row: no to_q, no
 * attention, and to_out on 1 row instead of one per image token. Under guidance with diffusers' default empty
 * negative prompt that is the whole unconditional half, 1/14 of the step's Linear FLOPs. The other rows take the
 * ordinary path. The single rows' to_out also gets a row of zeros, so that it never runs on an empty batch.
 */
function crossAttention(
  g: GraphBuilder, config: PixArtTransformer2DConfig, linear: LinearFn, prefix: string, x: Value, text: BlockText, singleKeyRows: Value,
): Value {
  const d = config.innerDim;
  const zero = g.constI64([0]);
  const end = g.constI64([Number.MAX_SAFE_INTEGER]);
  const rows = (t: Value, from: Value, to: Value) => g.op("Slice", [t, from, to, zero]);
  const firstValues = g.op("Slice", [text.v, g.constI64([0, 0]), g.op("Concat", [singleKeyRows, g.constI64([1])], { axis: 0 }), g.constI64([0, 1])]);
  const padded = g.op("Concat", [firstValues, g.constF32(new Float32Array(d), [1, 1, d])], { axis: 0 });
  const singleOut = rows(linear(g, padded, `${prefix}.to_out.0`, { shape: [d, d] }), zero, singleKeyRows);
  const single = g.op("Add", [singleOut, rows(x, zero, singleKeyRows)]);
  const rest = rows(x, singleKeyRows, end);
  const restText = { k: rows(text.k, singleKeyRows, end), v: rows(text.v, singleKeyRows, end) };
  const others = g.op("Add", [attention(g, config, linear, prefix, rest, restText, rows(text.keyPaddingMask, singleKeyRows, end)), rest]);
  return g.op("Concat", [single, others], { axis: 0 });
}

/**
 * diffusers' `get_2d_sincos_pos_embed` for a (rows × cols) patch grid: grid coordinates in float32, the
 * sinusoids in float64, result rounded to float32. Channels: [sin x, cos x, sin y, cos y] (x = column).
 */
export function sincosPosEmbed(dim: number, rows: number, cols: number, baseSize: number, interpolationScale: number): Float32Array {
  const f = Math.fround;
  const coords = (n: number) => Float32Array.from({ length: n }, (_, i) => f(f(i / f(n / baseSize)) / f(interpolationScale)));
  const ys = coords(rows);
  const xs = coords(cols);
  const quarter = dim / 4;
  const omega = Float64Array.from({ length: quarter }, (_, k) => 1 / Math.pow(10000, k / (dim / 4)));
  const out = new Float32Array(rows * cols * dim);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      const row = (i * cols + j) * dim;
      for (let k = 0; k < quarter; k++) {
        const ax = xs[j] * omega[k];
        const ay = ys[i] * omega[k];
        out[row + k] = Math.sin(ax);
        out[row + quarter + k] = Math.cos(ax);
        out[row + 2 * quarter + k] = Math.sin(ay);
        out[row + 3 * quarter + k] = Math.cos(ay);
      }
    }
  }
  return out;
}

export interface TransformerForwardInput {
  /** [B, inChannels, h, w] latents (h, w multiples of the patch size). */
  hiddenStates: Tensor;
  /** [B, L, captionChannels] text embeddings. */
  encoderHiddenStates: Tensor;
  /** [B, L] 1 = keep, 0 = padding. */
  encoderAttentionMask: Tensor<BigInt64Array>;
  /** One timestep per batch row: integers from DDPM-style schedulers or fractions from Euler-type ones. */
  timestep: ArrayLike<number> | BigInt64Array;
}

/** The input of PixArtTransformer2DModel.denoiseLoop. */
export interface DenoiseLoopInput {
  /** [B, inChannels, h, w] latents before the run's first step. */
  latents: Tensor;
  /** [2B, L, captionChannels] under guidance (unconditional rows first), else [B, L, captionChannels]. */
  encoderHiddenStates: Tensor;
  /** 1 = keep, 0 = padding, one row per text row. */
  encoderAttentionMask: Tensor<BigInt64Array>;
  /** The classifier-free guidance scale, or null for none. */
  guidanceScale: number | null;
  /** The steps of this run (DPMSolverMultistepScheduler.linearStepPlan). */
  plan: LinearStepPlan;
  /** The converted model output of the step before this run's first (null or absent before the first step). */
  previousModelOutput?: Float32Array | null;
}

export interface CrossAttentionForwardOptions {
  /** Blocks (0-based) whose cross-attention probabilities to return. */
  layers: readonly number[];
  /** First batch row to return them for (default 0). With CFG the conditional half starts at batch / 2. */
  rowStart?: number;
}

export interface TransformerAttentionOutput {
  /** What forward() returns. */
  sample: Tensor;
  /**
   * `[layers, rows, image tokens, text tokens]`: softmax probabilities averaged over heads, layers in the order
   * asked, image tokens row-major over the (height / patch) × (width / patch) grid.
   */
  crossAttention: Tensor;
}

/**
 * The transformer runs as two graphs over the same mapped weights: the text graph (caption projection and every
 * block's cross-attention keys/values, run when the prompt changes; see pixart-transformer-2d-text.ts) and the step
 * graph, which takes those keys and values. `built` is the step graph.
 */
export class PixArtTransformer2DModel extends OrtModel {
  private readonly posEmbedCache = new Map<string, Float32Array>();
  /** Set when loaded with `quantize`: the method, the cached file, and whether it was a cache hit. */
  quantization?: QuantizationReport;
  /**
   * A variant graph's session over the same weights, made on first use, one at a time: the attention-map graph for
   * one set of blocks, or the denoising-loop graph (with or without guidance).
   */
  private variant?: { key: string; session: Promise<ModelSession> };
  private readonly textCache = new TextKeysValuesCache();
  /** FORA's cache (enableCache) and its two graph variants' sessions, made on first use. */
  private stepCache?: ForaStepCache<ort.Tensor>;
  private foraSessions?: { save: Promise<ModelSession>; reuse: Promise<ModelSession> };

  private constructor(readonly config: PixArtTransformer2DConfig, built: BuiltModel, session: ModelSession,
    /** The text graph; its session is made on the first forward (on the model's device then) and kept until release. */
    private readonly text: { built: BuiltModel; session?: Promise<ModelSession> },
    private readonly graphSource: { weights: WeightSource; session?: SessionConfig & PixArtGraphOptions }) {
    super("transformer", built, session);
  }

  /** Loads a `transformer/` folder (config.json + safetensors weights, single or sharded). */
  static async fromPretrained(componentDir: string, opts: SessionConfig & WeightOptions & QuantizeLoadOptions = {}): Promise<PixArtTransformer2DModel> {
    const configFile = path.join(componentDir, "config.json");
    const config = parsePixArtTransformerConfig(await readJsonObject(configFile), configFile);
    const weights = await openWeights(componentDir, opts);
    if (opts.quantize === undefined) return PixArtTransformer2DModel.fromWeights(config, weights, opts);
    // Only the transformer blocks (over 95% of the weights): the timestep, modulation and caption projections
    // and proj_out run on a few rows, and the modulation vectors steer every block.
    const q = await prepareQuantized(weights, (linear) => buildPixArtTransformerGraph(config, weights, { linear }),
      { ...opts, label: "transformer", include: (l) => l.prefix.startsWith("transformer_blocks.") });
    // int8 is prepacked unless `prepack: false` is passed: MLAS's VNNI kernel then reads its own packed copy (the
    // blocks' int8 weights, 0.5 GiB, in anonymous memory instead of mapped file pages) and a 512 px step takes ~10 %
    // less CPU, the GEMMs 25–50 % less at 1024 px (docs/benchmarks.md). fp32 stays mapped (its copy would be 2.3 GiB).
    const session = q.session(opts);
    const prepack = session.prepack ?? opts.quantize === "int8";
    const model = await PixArtTransformer2DModel.fromWeights(config, q.weights, { ...session, prepack, linear: q.linear });
    model.quantization = q.report;
    return model;
  }

  static async fromWeights(
    config: PixArtTransformer2DConfig, weights: WeightSource, session?: SessionConfig & PixArtGraphOptions & WeightCheckOptions,
  ): Promise<PixArtTransformer2DModel> {
    const linear = session?.linear;
    const built = buildPixArtTransformerGraph(config, weights, { linear, text: "keys-values" });
    const text = buildPixArtTextGraph(config, weights, { linear });
    // Both graphs: the text graph's session is made only at the first forward, but its weights are checked now.
    await OrtModel.checkWeights([built, text], session);
    // The memory arena by default: a denoising loop runs the same shapes step after step, and without the arena
    // each step maps and page-faults its activations afresh (measured at 512 px: ~15,000 page faults and ~70 ms of
    // system time per block and step, none with the arena). The arena keeps one step's activations until release().
    const sessionConfig: SessionConfig & PixArtGraphOptions = { memoryArena: true, ...session };
    const stepSession = await OrtModel.createSession(built, sessionConfig);
    return new PixArtTransformer2DModel(config, built, stepSession, { built: text }, { weights, session: sessionConfig });
  }

  async forward(input: TransformerForwardInput): Promise<Tensor> {
    const { feeds } = await this.feeds(input);
    if (this.stepCache) return this.forwardCached(this.stepCache, feeds);
    return fromOrt((await this.run(feeds)).sample);
  }

  /**
   * Turns on step caching (diffusers' `transformer.enable_cache(config)`): `{ method: "fora", interval: N }`, see
   * pixart-transformer-2d-cache.ts. From then on forward() counts its calls: every N-th (from the first after
   * enableCache or resetCache) is a full step that keeps each block's self-attention and feed-forward outputs,
   * the others reuse them. The pipeline calls resetCache() at the start of every call. The images change (measured
   * in docs/benchmarks.md, "Fast options"); cannot be combined with attention maps or the in-graph loop.
   */
  enableCache(config: TransformerCacheConfig): void {
    const parsed = parseCacheConfig(config);
    this.stepCache = new ForaStepCache<ort.Tensor>(parsed, this.config.numLayers);
  }

  /** Back to exact steps (diffusers' `disable_cache()`); frees the cached outputs and the variants' sessions. */
  async disableCache(): Promise<void> {
    this.stepCache = undefined;
    const fora = this.foraSessions;
    this.foraSessions = undefined;
    if (fora) await Promise.all([releaseMade(fora.save), releaseMade(fora.reuse)]);
  }

  /** The cache enableCache turned on, or undefined. */
  get cacheConfig(): TransformerCacheConfig | undefined {
    return this.stepCache?.config;
  }

  /** Makes the next forward() a full step and frees the cached outputs (no-op without a cache). */
  resetCache(): void {
    this.stepCache?.reset();
  }

  /** Bytes the step cache holds between steps (layers × 2 × batch × image tokens × inner dim float32s). */
  get stepCacheBytes(): number {
    return this.stepCache?.bytes ?? 0;
  }

  private async forwardCached(cache: ForaStepCache<ort.Tensor>, feeds: Record<string, ort.Tensor>): Promise<Tensor> {
    if (this.released) throw new ModelReleasedError(this.modelName);
    const key = `${feeds.hidden_states.dims.join("x")}/${feeds.encoder_attention_mask.dims.join("x")}`;
    const text = feeds[textKeyName(0)].data;
    const reused = cache.next(key, text);
    this.foraSessions ??= {
      save: this.makeSession((linear) => buildPixArtTransformerGraph(this.config, this.graphSource.weights, { linear, text: "keys-values", cache: "save" })),
      reuse: this.makeSession((linear) => buildPixArtTransformerGraph(this.config, this.graphSource.weights, { linear, text: "keys-values", cache: "reuse" })),
    };
    const fora = this.foraSessions;
    if (reused) return fromOrt((await this.runCounted(await fora.reuse, { ...feeds, ...reused }, 1)).sample);
    const out = await this.runCounted(await fora.save, feeds, 1);
    cache.store(key, text, out);
    return fromOrt(out.sample);
  }

  /**
   * forward() that also returns the head-mean cross-attention probabilities of the chosen blocks. Runs the
   * attention-map variant of the graph (same weights, built on the first call for a set of blocks and kept until
   * another set is asked for or the model is released); forward() keeps using the default graph.
   */
  async forwardWithCrossAttention(input: TransformerForwardInput, options: CrossAttentionForwardOptions): Promise<TransformerAttentionOutput> {
    if (this.stepCache) throw new CacheOptionError("forwardWithCrossAttention", "the attention-map graph has no step cache; call disableCache() first");
    const layers = checkCrossAttentionLayers(options?.layers, this.config.numLayers);
    const batch = input.hiddenStates.dims[0];
    const rowStart = options.rowStart ?? 0;
    if (!Number.isInteger(rowStart) || rowStart < 0 || rowStart >= batch) {
      throw new CrossAttentionOptionError("rowStart", `expected an integer in [0, ${batch}) (the batch has ${batch} rows), got ${rowStart}`);
    }
    const { feeds, textLength } = await this.feeds(input);
    const session = await this.variantSession(`attention:${[...layers].sort((a, b) => a - b).join(",")}`,
      (linear) => buildPixArtTransformerGraph(this.config, this.graphSource.weights, { linear, crossAttentionLayers: layers, text: "keys-values" }));
    const out = await this.runCounted(session, { ...feeds, [ATTENTION_ROW_START]: new ort.Tensor("int64", BigInt64Array.of(BigInt(rowStart)), [1]) }, 1);
    // The graph saw the trimmed tokens only; the others get probability 0, as in diffusers.
    const perLayer = layers.map((l) => padLastAxis(fromOrt(out[crossAttentionOutputName(l)]), textLength));
    const data = new Float32Array(perLayer.reduce((n, t) => n + t.data.length, 0));
    let offset = 0;
    for (const t of perLayer) {
      data.set(t.data, offset);
      offset += t.data.length;
    }
    return { sample: fromOrt(out.sample), crossAttention: { data, dims: [layers.length, ...perLayer[0].dims] } };
  }

  /** Bytes of checkpoint weights the step and text graphs map, by stored dtype (each weight is in one of them). */
  override get weightBytes(): BuiltModel["weightBytes"] {
    const sum: BuiltModel["weightBytes"] = { ...this.built.weightBytes };
    for (const [dtype, n] of Object.entries(this.text.built.weightBytes) as [keyof typeof sum, number][]) sum[dtype] = (sum[dtype] ?? 0) + n;
    return sum;
  }

  /** Bytes held between calls for the last prompt's cross-attention keys and values (freed by release()). */
  get textCacheBytes(): number {
    return this.textCache.bytes;
  }

  private async variantSession(key: string, build: (linear: LinearFn | undefined) => BuiltModel): Promise<ModelSession> {
    if (this.released) throw new ModelReleasedError(this.modelName);
    if (this.variant?.key !== key) {
      const old = this.variant;
      const variant = { key, session: this.makeSession(build) };
      this.variant = variant;
      // A failed build is not cached: the next call tries again.
      variant.session.catch(() => { if (this.variant === variant) this.variant = undefined; });
      if (old) await releaseMade(old.session);
    }
    return this.variant.session;
  }

  /** A session for a graph variant over the same weights, on the device the model is on now (to() may have moved it). */
  private makeSession(build: (linear: LinearFn | undefined) => BuiltModel): Promise<ModelSession> {
    const session = this.graphSource.session;
    const made = OrtModel.createSession(build(session?.linear), { ...session, device: this.device });
    made.catch(() => { if (this.foraSessions && Object.values(this.foraSessions).includes(made)) this.foraSessions = undefined; });
    return made;
  }

  /**
   * Runs `plan.timesteps.length` denoising steps in one onnxruntime run (the denoising-loop graph,
   * pixart-denoise-loop.ts): the transformer, guidance and the scheduler's update, the text embeddings and position
   * table sent once for all of them. Returns the latents after the last step and that step's converted model output
   * (m₋₁ of the next run). The loop graph is a second session over the same weight files, made on first use (on a
   * GPU its weights are then resident twice until the model is released or moved).
   */
  async denoiseLoop(input: DenoiseLoopInput): Promise<{ latents: Tensor; modelOutput: Tensor }> {
    if (this.stepCache) throw new CacheOptionError("denoiseLoop", "the in-graph denoising loop has no step cache; call disableCache() first");
    const { latents, guidanceScale, plan } = input;
    const guidance = guidanceScale !== null;
    const [batch, channels, h, w] = latents.dims;
    const rows = guidance ? 2 * batch : batch;
    this.check(latents.dims.length === 4 && channels === this.config.inChannels, "latents", `[batch, ${this.config.inChannels}, height, width]`, latents.dims);
    const k = plan.timesteps.length;
    if (k < 1 || PLAN_FIELDS.some((f) => !(plan[f] instanceof Float32Array) || plan[f].length !== k)) {
      throw new TransformerInputError("plan", `float32 arrays of one length ≥ 1 (${PLAN_FIELDS.join(", ")})`, PLAN_FIELDS.map((f) => plan[f]?.length ?? -1));
    }
    const prev = input.previousModelOutput ?? new Float32Array(latents.data.length);
    this.check(prev.length === latents.data.length, "previousModelOutput", `${latents.data.length} values (the latents' size)`, [prev.length]);
    const loopFeeds: Record<string, ort.Tensor> = {
      latents: toOrt(latents),
      ...this.contextFeeds([rows, channels, h, w], input.encoderHiddenStates, input.encoderAttentionMask),
      prev_model_output: new ort.Tensor("float32", prev, [...latents.dims]),
    };
    for (const f of PLAN_FIELDS) loopFeeds[f] = new ort.Tensor("float32", plan[f], [k]);
    if (guidance) loopFeeds.guidance_scale = new ort.Tensor("float32", Float32Array.of(guidanceScale), []);
    const session = await this.variantSession(`loop:${guidance ? "cfg" : "plain"}`,
      (linear) => buildPixArtDenoiseLoopGraph(this.config, this.graphSource.weights, { guidance, linear }));
    const out = await this.runCounted(session, loopFeeds, k);
    return { latents: fromOrt(out.latents_out), modelOutput: fromOrt(out.model_output) };
  }

  /** Moves the model; the text graph's and a variant's session are made again on the new device when next used. */
  override async to(device: Device): Promise<this> {
    const from = this.device;
    await super.to(device);
    if (this.device !== from) await this.releaseOthers();
    return this;
  }

  /** Releases the step session, the text graph's and the variant's if they were made, and the cached keys/values. */
  override async release(): Promise<void> {
    this.textCache.clear();
    this.stepCache?.reset();
    await super.release();
    await this.releaseOthers();
  }

  private async releaseOthers(): Promise<void> {
    const variant = this.variant;
    const text = this.text.session;
    const fora = this.foraSessions;
    this.variant = undefined;
    this.text.session = undefined;
    this.foraSessions = undefined;
    if (text) await releaseMade(text);
    if (variant) await releaseMade(variant.session);
    if (fora) await Promise.all([releaseMade(fora.save), releaseMade(fora.reuse)]);
  }

  private textSession(): Promise<ModelSession> {
    if (this.released) throw new ModelReleasedError(this.modelName);
    if (!this.text.session) {
      const made = OrtModel.createSession(this.text.built, this.sessionOptions);
      this.text.session = made;
      made.catch(() => { if (this.text.session === made) this.text.session = undefined; });
    }
    return this.text.session;
  }

  /** The step graph's feeds: the prompt's keys and values from the cache or the text graph, the mask trimmed alike. */
  private async feeds(input: TransformerForwardInput): Promise<{ feeds: Record<string, ort.Tensor>; textLength: number }> {
    const { hiddenStates, encoderHiddenStates, encoderAttentionMask } = input;
    const length = this.checkContext(hiddenStates.dims, encoderHiddenStates, encoderAttentionMask);
    const batch = hiddenStates.dims[0];
    this.check(input.timestep.length === batch, "timestep", `${batch} values`, [input.timestep.length]);
    if (this.released) throw new ModelReleasedError(this.modelName);
    const keysValues = await this.textCache.get(encoderHiddenStates, encoderAttentionMask, length,
      async (embeds) => this.runCounted(await this.textSession(), { encoder_hidden_states: toOrt(embeds) }, 0));
    const timestep = Float32Array.from(Array.from(input.timestep as ArrayLike<number | bigint>, Number));
    const feeds = {
      ...keysValues,
      hidden_states: toOrt(hiddenStates),
      encoder_attention_mask: toOrt(firstTokens(encoderAttentionMask, length)),
      timestep: new ort.Tensor("float32", timestep, [batch]),
      pos_embed: this.positions(hiddenStates.dims),
    };
    return { feeds, textLength: encoderAttentionMask.dims[1] };
  }

  /**
   * The denoising loop's feeds that do not change from step to step: text and mask (trimmed to the tokens some row
   * keeps, see pixart-transformer-2d-text.ts) and positions.
   */
  private contextFeeds(dims: readonly number[], encoderHiddenStates: Tensor, encoderAttentionMask: Tensor<BigInt64Array>): Record<string, ort.Tensor> {
    const length = this.checkContext(dims, encoderHiddenStates, encoderAttentionMask);
    return {
      encoder_hidden_states: toOrt(firstTokens(encoderHiddenStates, length)),
      encoder_attention_mask: toOrt(firstTokens(encoderAttentionMask, length)),
      pos_embed: this.positions(dims),
    };
  }

  /** Checks the text inputs against a transformer input of shape `dims` ([B, C, H, W]); returns validTextLength. */
  private checkContext(dims: readonly number[], encoderHiddenStates: Tensor, encoderAttentionMask: Tensor<BigInt64Array>): number {
    const [batch, channels, h, w] = dims;
    const { patchSize: p } = this.config;
    this.check(dims.length === 4 && channels === this.config.inChannels, "hiddenStates", `[batch, ${this.config.inChannels}, height, width]`, dims);
    this.check(h % p === 0 && w % p === 0 && h > 0 && w > 0, "hiddenStates",
      `height and width that are positive multiples of the patch size ${p}`, dims);
    const [tb, len, width] = encoderHiddenStates.dims;
    this.check(tb === batch && width === (this.config.captionChannels ?? this.config.crossAttentionDim), "encoderHiddenStates",
      `[${batch}, L, ${this.config.captionChannels ?? this.config.crossAttentionDim}]`, encoderHiddenStates.dims);
    this.check(encoderAttentionMask.dims.length === 2 && encoderAttentionMask.dims[0] === batch && encoderAttentionMask.dims[1] === len,
      "encoderAttentionMask", `[${batch}, ${len}]`, encoderAttentionMask.dims);
    return validTextLength(encoderAttentionMask);
  }

  private positions(dims: readonly number[]): ort.Tensor {
    const [h, w] = [dims[2] / this.config.patchSize, dims[3] / this.config.patchSize];
    return new ort.Tensor("float32", this.posEmbed(h, w), [1, h * w, this.config.innerDim]);
  }

  /** Positions for a rows × cols patch grid, relative to the training grid (sampleSize / patchSize). */
  posEmbed(rows: number, cols: number): Float32Array {
    const key = `${rows}x${cols}`;
    let table = this.posEmbedCache.get(key);
    if (!table) {
      const baseSize = Math.floor(this.config.sampleSize / this.config.patchSize);
      table = sincosPosEmbed(this.config.innerDim, rows, cols, baseSize, this.config.interpolationScale);
      this.posEmbedCache.set(key, table);
    }
    return table;
  }

  private check(ok: boolean, argument: string, expected: string, found: readonly number[]): void {
    if (!ok) throw new TransformerInputError(argument, expected, found);
  }
}

/** Releases a session made on demand (one whose creation failed has nothing to release). */
async function releaseMade(made: Promise<ModelSession>): Promise<void> {
  const session = await made.catch(() => undefined);
  await session?.release();
}

export class TransformerInputError extends Error {
  override name = "TransformerInputError";
  constructor(readonly argument: string, expected: string, found: readonly number[]) {
    super(`PixArtTransformer2DModel.forward: ${argument} must be ${expected}, got shape [${found.join(", ")}]`);
  }
}

