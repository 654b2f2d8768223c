/**
 * The prompt's part of the PixArt transformer, made once per prompt instead of once per denoising step.
 *
 * Two exact savings (outputs unchanged, see test/unit/transformer-text.test.ts):
 * - Trimming: text tokens past the last one any row keeps are masked in every row. diffusers adds −10000 to their
 *   scores, so their softmax weight underflows to exactly 0 in float32; dropping them from the keys and values
 *   changes nothing but the work. (A row that keeps no token at all attends uniformly over every key in diffusers,
 *   padding included, so then nothing is trimmed.)
 * - Caching: the caption projection and every block's cross-attention keys and values depend on the prompt only,
 *   so they are computed by the text graph when the prompt changes and fed to every step's graph.
 */
import * as ort from "onnxruntime-node";
import type { Tensor } from "./model";

/**
 * Number of leading text tokens that matter: one past the last position any row keeps, or every position when some
 * row keeps none (see above). At least 1.
 */
export function validTextLength(mask: Tensor<BigInt64Array>): number {
  const [rows, len] = mask.dims;
  let last = -1;
  for (let r = 0; r < rows; r++) {
    let rowLast = -1;
    for (let k = 0; k < len; k++) if (mask.data[r * len + k] !== 0n) rowLast = k;
    if (rowLast < 0) return len;
    last = Math.max(last, rowLast);
  }
  return Math.max(last + 1, 1);
}

/** The first `n` positions along axis 1 of a [B, L, ...] tensor (the tensor itself when n = L). */
export function firstTokens<T extends Float32Array | BigInt64Array>(t: Tensor<T>, n: number): Tensor<T> {
  const [b, len] = t.dims;
  if (n === len) return t;
  const inner = t.dims.slice(2).reduce((a, x) => a * x, 1);
  const data = new (t.data.constructor as new (n: number) => T)(b * n * inner);
  for (let r = 0; r < b; r++) data.set(t.data.subarray(r * len * inner, (r * len + n) * inner) as never, r * n * inner);
  return { data, dims: [b, n, ...t.dims.slice(2)] };
}

/** [..., n] → [..., len]: the trimmed tokens' columns back, as zeros (the probability diffusers gives them). */
export function padLastAxis(t: Tensor, len: number): Tensor {
  const n = t.dims[t.dims.length - 1];
  if (n === len) return t;
  const rows = t.data.length / n;
  const data = new Float32Array(rows * len);
  for (let r = 0; r < rows; r++) data.set(t.data.subarray(r * n, (r + 1) * n), r * len);
  return { data, dims: [...t.dims.slice(0, -1), len] };
}

/**
 * The text graph's outputs for the last prompt seen, keyed by the exact contents of the embeddings and mask (a
 * pipeline passes the same ones on every step; a caller that changes them in place gets them recomputed).
 * Holds a copy of those inputs plus `layers × 2 × B × L' × inner dim` floats of keys and values: with CFG (B = 2) and
 * PixArt-Σ's 28 blocks of width 1152, 10 MB for a 20-token prompt, 155 MB for a full 300-token one.
 */
export class TextKeysValuesCache {
  private entry?: { embeds: Tensor; mask: Tensor<BigInt64Array>; outputs: Readonly<Record<string, ort.Tensor>> };

  /** The keys and values for these embeddings (trimmed to `length` tokens), from `compute` when not cached. */
  async get(embeds: Tensor, mask: Tensor<BigInt64Array>, length: number,
    compute: (trimmed: Tensor) => Promise<Readonly<Record<string, ort.Tensor>>>): Promise<Readonly<Record<string, ort.Tensor>>> {
    const hit = this.entry && sameTensor(this.entry.embeds, embeds) && sameTensor(this.entry.mask, mask);
    if (hit) return this.entry!.outputs;
    this.entry = undefined;
    const outputs = await compute(firstTokens(embeds, length));
    this.entry = { embeds: copy(embeds), mask: copy(mask), outputs };
    return outputs;
  }

  /** Bytes held: the keys and values plus the copy of the inputs they were made from. */
  get bytes(): number {
    if (!this.entry) return 0;
    const outs = Object.values(this.entry.outputs).reduce((n, t) => n + (t.data as Float32Array).byteLength, 0);
    return outs + this.entry.embeds.data.byteLength + this.entry.mask.data.byteLength;
  }

  clear(): void {
    this.entry = undefined;
  }
}

function sameTensor(a: Tensor<Float32Array | BigInt64Array>, b: Tensor<Float32Array | BigInt64Array>): boolean {
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const bytes = (t: Tensor<Float32Array | BigInt64Array>) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return a.data.constructor === b.data.constructor && bytes(a).equals(bytes(b));
}

function copy<T extends Float32Array | BigInt64Array>(t: Tensor<T>): Tensor<T> {
  return { data: t.data.slice() as T, dims: [...t.dims] };
}
