/**
 * diffusers `AutoencoderKL`, decoder half only (text-to-image never encodes): latents [B, C, h, w] → image
 * [B, out, f·h, f·w] with f = 2^(len(block_out_channels) − 1). Encoder weights stay in the file, unreferenced.
 *
 * Graph, in forward order: post_quant_conv → decoder.conv_in → mid_block (resnet, attention, resnet) →
 * up_blocks (widest first; each ends with nearest ×2 + conv except the last) → GroupNorm → SiLU → conv_out.
 */
import * as path from "path";
import type { TensorInfo, WeightSource } from "../io/types";
import { GraphBuilder, type BuiltModel, type Value } from "../onnx/graph";
import { concatShape, conv2d, dim, groupNorm, linear, multiHeadAttention, reshape, silu, transpose, upsampleConv2d } from "../onnx/ops";
import type { ModelSession, SessionConfig } from "../onnx/session";
import { openWeights, withAliases, type WeightOptions } from "../io/checkpoint";
import { readJsonObject } from "../io/json";
import type { WeightCheckOptions } from "../io/weight-scan";
import { ConfigReader, type RawConfig } from "./config-fields";
import { OrtModel, fromOrt, toOrt, type Tensor } from "./model";
import { tileGeometry, tiledDecode, type TileGeometry } from "./autoencoder-kl-tiling";

// ───────────────────────────── config ─────────────────────────────

export interface AutoencoderKLConfig {
  blockOutChannels: number[];
  layersPerBlock: number;
  latentChannels: number;
  outChannels: number;
  normNumGroups: number;
  /** Resnet activation; diffusers maps both names to SiLU. */
  actFn: "silu" | "swish";
  upBlockTypes: string[];
  /** Latents are divided by this before decoding. */
  scalingFactor: number;
  /** Exposed only: the PixArt pipeline does not apply it. */
  shiftFactor: number | null;
  /** Tile size in pixels for tiled decoding (diffusers' `tile_sample_min_size`). */
  sampleSize: number;
  usePostQuantConv: boolean;
  midBlockAddAttention: boolean;
  /** Ignored: this decoder always computes in fp32. */
  forceUpcast: boolean;
}

const UP_BLOCK_TYPE = "UpDecoderBlock2D";

/** Validates `vae/config.json` with diffusers' constructor defaults for absent keys. */
export function parseAutoencoderKLConfig(raw: RawConfig, file: string): AutoencoderKLConfig {
  const r = new ConfigReader(raw, file);
  if (r.has("_class_name")) r.string("_class_name", undefined, ["AutoencoderKL"]);
  const blockOutChannels = r.intList("block_out_channels", [64]);
  const normNumGroups = r.int("norm_num_groups", 32);
  const bad = blockOutChannels.find((c) => c % normNumGroups !== 0);
  r.require(bad === undefined, "norm_num_groups",
    `expected a divisor of every block_out_channels entry (GroupNorm splits channels into equal groups), found ${normNumGroups}, which does not divide ${bad}`);
  const upBlockTypes = r.stringList("up_block_types", [UP_BLOCK_TYPE]);
  const other = upBlockTypes.find((t) => t !== UP_BLOCK_TYPE);
  r.require(other === undefined, "up_block_types", `only "${UP_BLOCK_TYPE}" is supported, found ${JSON.stringify(other)}`);
  r.require(upBlockTypes.length === blockOutChannels.length, "up_block_types",
    `expected one entry per block_out_channels entry (${blockOutChannels.length}), found ${upBlockTypes.length}`);
  const scalingFactor = r.number("scaling_factor", 0.18215);
  r.require(scalingFactor !== 0 && Number.isFinite(scalingFactor), "scaling_factor",
    `expected a finite non-zero number (latents are divided by it), found ${scalingFactor}`);
  return {
    blockOutChannels,
    layersPerBlock: r.int("layers_per_block", 1, 0),
    latentChannels: r.int("latent_channels", 4),
    outChannels: r.int("out_channels", 3),
    normNumGroups,
    actFn: r.string("act_fn", "silu", ["silu", "swish"]),
    upBlockTypes,
    scalingFactor,
    shiftFactor: r.has("shift_factor") ? r.number("shift_factor") : null,
    sampleSize: readSampleSize(r),
    usePostQuantConv: r.boolean("use_post_quant_conv", true),
    midBlockAddAttention: r.boolean("mid_block_add_attention", true),
    forceUpcast: r.boolean("force_upcast", true),
  };
}

/** `sample_size` is an int or an [h, w] pair; diffusers tiles with the first entry. */
function readSampleSize(r: ConfigReader): number {
  const v = r.raw["sample_size"];
  if (Array.isArray(v)) return r.intList("sample_size")[0];
  return r.int("sample_size", 32);
}

/** Pixels per latent along each axis: every up block but the last doubles the resolution. */
export function vaeScaleFactor(config: AutoencoderKLConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

// ───────────────────────────── weights ─────────────────────────────

/** diffusers' deprecated attention block names → current names (renamed by diffusers at load). */
const LEGACY_ATTENTION_NAMES: Readonly<Record<string, string>> = {
  to_q: "query", to_k: "key", to_v: "value", "to_out.0": "proj_attn",
};

/**
 * Old checkpoints name the VAE attention projections `query/key/value/proj_attn`, some with 1×1-conv-shaped
 * weights [C, C, 1, 1]. Both load like the current `to_q/...` [C, C] (diffusers renames them at load). A
 * [C, C, 1, 1] tensor has the same bytes as [C, C] in row-major order, so the squeeze is only a different
 * shape on the same external data: no Reshape node, no copy.
 */
export function withLegacyAttentionNames(weights: WeightSource, attentionPrefixes: readonly string[]): WeightSource {
  const aliases: Record<string, string> = {};
  const projections: string[] = [];
  for (const prefix of attentionPrefixes) {
    for (const [current, legacy] of Object.entries(LEGACY_ATTENTION_NAMES)) {
      for (const param of ["weight", "bias"]) aliases[`${prefix}.${current}.${param}`] = `${prefix}.${legacy}.${param}`;
      projections.push(`${prefix}.${current}.weight`);
    }
  }
  return squeezeConv1x1(withAliases(weights, aliases), new Set(projections));
}

function squeezeConv1x1(weights: WeightSource, names: ReadonlySet<string>): WeightSource {
  const get = (n: string): TensorInfo => {
    const info = weights.get(n);
    const [o, i, kh, kw] = info.shape;
    return names.has(n) && info.shape.length === 4 && kh === 1 && kw === 1 ? { ...info, shape: [o, i] } : info;
  };
  return { dir: weights.dir, has: (n) => weights.has(n), get, names: () => weights.names() };
}

// ───────────────────────────── graph ─────────────────────────────

/** All norms in the decoder use diffusers' hard-coded eps (the config has no field for it). */
const NORM_EPS = 1e-6;
const MID_ATTENTION = "decoder.mid_block.attentions.0";

interface Ctx {
  g: GraphBuilder;
  groups: number;
}

/** The decode graph: input `z` (latents already divided by scaling_factor), output `sample`. */
export function buildAutoencoderKLGraph(config: AutoencoderKLConfig, weights: WeightSource): BuiltModel {
  const g = new GraphBuilder("AutoencoderKL.decode", withLegacyAttentionNames(weights, [MID_ATTENTION]));
  const ctx: Ctx = { g, groups: config.normNumGroups };
  const lat = config.latentChannels;
  const channels = [...config.blockOutChannels].reverse();
  let x = g.input("z", "float32", ["batch", lat, "latent_height", "latent_width"]);

  if (config.usePostQuantConv) x = conv2d(g, x, "post_quant_conv", { inChannels: lat, outChannels: lat, kernel: 1 });
  x = conv2d(g, x, "decoder.conv_in", { inChannels: lat, outChannels: channels[0], kernel: 3 });
  x = midBlock(ctx, x, channels[0], config.midBlockAddAttention);
  channels.forEach((out, i) => {
    const isLast = i === channels.length - 1;
    x = upDecoderBlock(ctx, x, `decoder.up_blocks.${i}`, channels[Math.max(i - 1, 0)], out, config.layersPerBlock + 1, !isLast);
  });
  // conv_act is a plain SiLU whatever act_fn says.
  x = silu(g, groupNorm(g, x, "decoder.conv_norm_out", ctx.groups, channels[channels.length - 1], NORM_EPS));
  x = conv2d(g, x, "decoder.conv_out", { inChannels: channels[channels.length - 1], outChannels: config.outChannels, kernel: 3 });

  g.output(x, "sample", "float32", ["batch", config.outChannels, "height", "width"]);
  return g.build();
}

/** UNetMidBlock2D without time embedding: resnet, then (optionally) attention + resnet. */
function midBlock(ctx: Ctx, x: Value, channels: number, withAttention: boolean): Value {
  x = resnetBlock(ctx, x, "decoder.mid_block.resnets.0", channels, channels);
  if (withAttention) x = attentionBlock(ctx, x, MID_ATTENTION, channels);
  return resnetBlock(ctx, x, "decoder.mid_block.resnets.1", channels, channels);
}

function upDecoderBlock(ctx: Ctx, x: Value, prefix: string, inCh: number, outCh: number, resnets: number, upsample: boolean): Value {
  for (let j = 0; j < resnets; j++) x = resnetBlock(ctx, x, `${prefix}.resnets.${j}`, j === 0 ? inCh : outCh, outCh);
  if (!upsample) return x;
  return upsampleConv2d(ctx.g, x, `${prefix}.upsamplers.0.conv`, outCh);
}

/** ResnetBlock2D, pre-norm, no time embedding, output_scale_factor 1 (so no division). */
function resnetBlock(ctx: Ctx, x: Value, prefix: string, inCh: number, outCh: number): Value {
  const { g, groups } = ctx;
  let h = silu(g, groupNorm(g, x, `${prefix}.norm1`, groups, inCh, NORM_EPS));
  h = conv2d(g, h, `${prefix}.conv1`, { inChannels: inCh, outChannels: outCh, kernel: 3 });
  h = silu(g, groupNorm(g, h, `${prefix}.norm2`, groups, outCh, NORM_EPS));
  h = conv2d(g, h, `${prefix}.conv2`, { inChannels: outCh, outChannels: outCh, kernel: 3 });
  const shortcut = inCh === outCh ? x : conv2d(g, x, `${prefix}.conv_shortcut`, { inChannels: inCh, outChannels: outCh, kernel: 1 });
  return g.op("Add", [shortcut, h], {}, { name: `${prefix}/residual` });
}

/**
 * Single-head self-attention over the h·w positions with a GroupNorm in front and a residual. MultiHeadAttention
 * never materializes the (h·w)² score matrix (1 GiB at 128×128 latents).
 */
function attentionBlock(ctx: Ctx, x: Value, prefix: string, channels: number): Value {
  const { g, groups } = ctx;
  const normed = groupNorm(g, x, `${prefix}.group_norm`, groups, channels, NORM_EPS);
  const tokens = transpose(g, reshape(g, normed, [0, channels, -1]), [0, 2, 1]); // [B, h·w, C]
  const proj = (name: string, t: Value) => linear(g, t, `${prefix}.${name}`, { shape: [channels, channels] });
  const attn = multiHeadAttention(g, proj("to_q", tokens), proj("to_k", tokens), proj("to_v", tokens), 1);
  const out = transpose(g, proj("to_out.0", attn), [0, 2, 1]); // [B, C, h·w]
  const spatial = reshape(g, out, concatShape(g, [dim(g, x, 0), channels, dim(g, x, 2), dim(g, x, 3)]));
  return g.op("Add", [spatial, x], {}, { name: `${prefix}/residual` });
}

// ───────────────────────────── model ─────────────────────────────

/** Latents of the wrong rank, channel count or data length. */
export class LatentShapeError extends Error {
  override name = "LatentShapeError";
}

export interface DecodeOptions {
  /** Decode one image at a time (diffusers' `enable_slicing`): peak memory of batch 1, same result. */
  sliced?: boolean;
  /**
   * Decode in overlapping tiles with blended seams (diffusers' `tiled_decode`); default: whatever
   * `enableTiling()` set. As in diffusers, only latents larger than one tile are tiled.
   */
  tiled?: boolean;
}

/** diffusers' tiling attributes (`tile_sample_min_size`, `tile_latent_min_size`, `tile_overlap_factor`). */
export interface TilingOptions {
  /** Tile size in pixels; default the config's `sample_size` (512 for PixArt-Σ's VAE). */
  tileSampleMinSize?: number;
  /** Fraction of a tile shared with each neighbour; default 0.25. */
  tileOverlapFactor?: number;
}

/** A tiling option outside its range. */
export class TilingOptionError extends Error {
  override name = "TilingOptionError";
}

export class AutoencoderKL extends OrtModel {
  /** Whether `decode` tiles latents larger than one tile (diffusers' `use_tiling`; see `enableTiling`). */
  useTiling = false;
  private tiling: TileGeometry;

  private constructor(readonly config: AutoencoderKLConfig, built: BuiltModel, session: ModelSession) {
    super("AutoencoderKL", built, session);
    this.tiling = tileGeometry(config.sampleSize, vaeScaleFactor(config), 0.25);
  }

  /**
   * Tiled decoding from now on (diffusers' `vae.enable_tiling()`): latents wider or taller than one tile are
   * decoded tile by tile, overlapping by `tileOverlapFactor`, and the overlaps are blended linearly, so the
   * memory of a decode is that of one tile whatever the image size. The result differs from a plain decode
   * near the seams (it matches diffusers' tiled decode).
   */
  enableTiling(options: TilingOptions = {}): void {
    const size = options.tileSampleMinSize ?? this.config.sampleSize;
    const overlap = options.tileOverlapFactor ?? 0.25;
    if (!Number.isInteger(size) || size < this.scaleFactor) {
      throw new TilingOptionError(`enableTiling: "tileSampleMinSize" must be an integer of at least ${this.scaleFactor} (one latent), got ${size}`);
    }
    if (!(overlap >= 0 && overlap < 1)) {
      throw new TilingOptionError(`enableTiling: "tileOverlapFactor" must be in [0, 1), got ${overlap}`);
    }
    this.tiling = tileGeometry(size, this.scaleFactor, overlap);
    if (this.tiling.latentStride < 1) {
      throw new TilingOptionError(`enableTiling: a ${size} px tile with overlap ${overlap} leaves no stride between tiles`);
    }
    this.useTiling = true;
  }

  /** Back to decoding whole latents at once (diffusers' `disable_tiling()`). */
  disableTiling(): void {
    this.useTiling = false;
  }

  /** The tile size, overlap and blend width in use (diffusers' names). */
  get tileSampleMinSize(): number {
    return this.tiling.sampleSize;
  }

  get tileLatentMinSize(): number {
    return this.tiling.latentSize;
  }

  get tileOverlapFactor(): number {
    return this.tiling.overlap;
  }

  /** Loads a `vae/` folder (config.json + safetensors weights, single or sharded). */
  static async fromPretrained(componentDir: string, opts: SessionConfig & WeightOptions = {}): Promise<AutoencoderKL> {
    const configFile = path.join(componentDir, "config.json");
    const config = parseAutoencoderKLConfig(await readJsonObject(configFile), configFile);
    return AutoencoderKL.fromWeights(config, await openWeights(componentDir, opts), opts);
  }

  /** Builds the decoder over already-indexed weights. */
  static async fromWeights(config: AutoencoderKLConfig, weights: WeightSource, session?: SessionConfig & WeightCheckOptions): Promise<AutoencoderKL> {
    const built = buildAutoencoderKLGraph(config, weights);
    await OrtModel.checkWeights([built], session);
    // The memory arena by default: without it a decode maps and page-faults every activation afresh, several times
    // over within one run (measured on the SDXL VAE at 512 px: 3.1–3.3 million minor faults and ~9 s of system time
    // per decode; with the arena 0.21 million on the first decode, under 1,000 on later ones, same output). The arena
    // keeps the largest decode's activations (~0.8 GB at 512 px) until release(). Without memory patterns: with them
    // the second decode of a size asks the arena for one block of the whole pattern, which the chunks freed by the
    // first decode cannot hold, so the arena doubles (2048 px tiled: 1.4 GiB after the first tile, 2.3 GiB after the second).
    const options: SessionConfig = { memoryArena: true, enableMemPattern: false, ...session };
    return new AutoencoderKL(config, built, await OrtModel.createSession(built, options));
  }

  get scalingFactor(): number {
    return this.config.scalingFactor;
  }

  get shiftFactor(): number | null {
    return this.config.shiftFactor;
  }

  /** Pixels per latent along each axis (8 for the SDXL VAE). */
  get scaleFactor(): number {
    return vaeScaleFactor(this.config);
  }

  /** Pipeline latents → image in about [-1, 1], as PixArt does: `decode(latents / scaling_factor)`, no shift. */
  async decode(latents: Tensor, opts: DecodeOptions = {}): Promise<Tensor> {
    this.checkLatents(latents, "latents");
    // torch divides in fp32 by the fp32-rounded scalar; storing into a Float32Array rounds the same way.
    const sf = Math.fround(this.config.scalingFactor);
    return this.decodeRaw({ data: latents.data.map((v) => v / sf), dims: latents.dims }, opts);
  }

  /** `vae.decode(z)`: z already divided by scaling_factor. */
  async decodeRaw(z: Tensor, opts: DecodeOptions = {}): Promise<Tensor> {
    this.checkLatents(z, "z");
    const [b, c, h, w] = z.dims;
    const tiled = opts.tiled ?? this.useTiling;
    const one = (t: Tensor) => (tiled && (h > this.tiling.latentSize || w > this.tiling.latentSize) ? tiledDecode(t, this.tiling, (x) => this.runDecoder(x)) : this.runDecoder(t));
    if (!opts.sliced || b === 1) return one(z);
    const per = c * h * w;
    const parts: Tensor[] = [];
    for (let i = 0; i < b; i++) parts.push(await one({ data: z.data.subarray(i * per, (i + 1) * per), dims: [1, c, h, w] }));
    const out = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
    parts.forEach((p, i) => out.set(p.data, i * p.data.length));
    return { data: out, dims: [b, ...parts[0].dims.slice(1)] };
  }

  /** post_quant_conv + decoder on one (tile of) latents. */
  private async runDecoder(z: Tensor): Promise<Tensor> {
    const out = await this.run({ z: toOrt(z) });
    return fromOrt(out["sample"]);
  }

  private checkLatents(t: Tensor, arg: string): void {
    const c = this.config.latentChannels;
    const dims = `[${t.dims.join(", ")}]`;
    if (t.dims.length !== 4 || t.dims[1] !== c || !t.dims.every((d) => Number.isInteger(d) && d > 0)) {
      throw new LatentShapeError(`AutoencoderKL.decode: argument "${arg}" must have dims [batch, ${c}, height, width], found ${dims}`);
    }
    const n = t.dims.reduce((a, d) => a * d, 1);
    if (t.data.length !== n) {
      throw new LatentShapeError(`AutoencoderKL.decode: argument "${arg}" has ${t.data.length} values, but dims ${dims} need ${n}`);
    }
  }
}
