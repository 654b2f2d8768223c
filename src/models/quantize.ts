/**
 * Weight-only quantization of torch `nn.Linear` weights (stored [out, in]) for onnxruntime's CPU contrib ops,
 * computed in TypeScript at load, and the linear functions that use them in a graph.
 *
 * - "int8": per-output-channel symmetric int8 (scale = max|w| / 127 for each output row), run by
 *   com.microsoft DynamicQuantizeMatMul. Its B input is [K = in, N = out] int8 with a per-column float scale
 *   [N] and no zero point; the activations are quantized per tensor to uint8 at run time (VNNI int8 GEMM).
 * - "int4": MatMulNBits, bits 4, blocks of 32 along K (K padded up to the block), asymmetric: each block maps
 *   [min(w, 0), max(w, 0)] onto 0..15 with a float scale and a 4-bit zero point. B is [N, kBlocks, 16] uint8
 *   (two values per byte, the first in the low nibble), scales [N·kBlocks] float, zero points packed the same
 *   way, [N · ceil(kBlocks / 2)] uint8. Asymmetric rather than symmetric because a block whose values are
 *   mostly of one sign then uses all 16 levels instead of about 8; the zero points cost 1/64 byte per weight.
 *
 * Both bound the per-element error by half a step: |w − ŵ| ≤ scale / 2 (see the unit tests).
 */
import { CheckpointError, NonFiniteWeightError } from "../io/errors";
import type { DType } from "../io/types";
import { GraphBuilder, type Value } from "../onnx/graph";
import { linear as fp32Linear } from "../onnx/ops";

export const QUANTIZE_METHODS = ["int8", "int4"] as const;
export type QuantizeMethod = (typeof QUANTIZE_METHODS)[number];

/** Source dtypes the quantizer reads. */
export const QUANTIZABLE_DTYPES: readonly DType[] = ["F32", "F16", "BF16"];

export const INT4_BLOCK_SIZE = 32;
/** Bytes of one packed 4-bit block of 32 values. */
const INT4_BLOB_SIZE = INT4_BLOCK_SIZE / 2;

/**
 * MatMulNBits `accuracy_level`: 0 computes in fp32 on the dequantized block (reference accuracy);
 * 4 quantizes the activations to int8 per block (faster, less accurate). See docs/quantization.md.
 */
export type Int4AccuracyLevel = 0 | 4;

/** A quantization option with a value outside the allowed ones. */
export class QuantizeOptionError extends Error {
  override name = "QuantizeOptionError";
  constructor(readonly option: string, readonly value: unknown, readonly allowed: readonly unknown[]) {
    super(`${option}: expected one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${describeValue(value)}`);
  }
}

/** A weight chosen for quantization is stored in a dtype the quantizer does not read (e.g. already int8). */
export class QuantizeDtypeError extends CheckpointError {
  override name = "QuantizeDtypeError";
  constructor(file: string, tensor: string, readonly dtype: DType) {
    super(file, `cannot quantize a ${dtype} tensor; expected one of ${QUANTIZABLE_DTYPES.join(", ")}`, { tensor });
  }
}

function describeValue(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === undefined || v === null || typeof v !== "object") return String(v);
  return Array.isArray(v) ? "an array" : "an object";
}

export function parseQuantizeMethod(value: unknown, option = "quantize"): QuantizeMethod {
  if (!(QUANTIZE_METHODS as readonly unknown[]).includes(value)) throw new QuantizeOptionError(option, value, QUANTIZE_METHODS);
  return value as QuantizeMethod;
}

export function parseInt4AccuracyLevel(value: unknown, option = "int4AccuracyLevel"): Int4AccuracyLevel {
  if (value === undefined) return 0;
  if (value !== 0 && value !== 4) throw new QuantizeOptionError(option, value, [0, 4]);
  return value;
}

// ---------------------------------------------------------------------------------------------------------------
// int8: per output channel, symmetric, stored transposed for DynamicQuantizeMatMul.

export interface Int8Weight {
  /** [K = in, N = out], row-major. */
  q: Int8Array;
  /** [N]: ŵ[n, k] = q[k, n] · scales[n]. */
  scales: Float32Array;
}

export function allocInt8(outFeatures: number, inFeatures: number): Int8Weight {
  return { q: new Int8Array(outFeatures * inFeatures), scales: new Float32Array(outFeatures) };
}

/**
 * Quantizes rows `firstRow ..` of a torch [out, in] weight (`rows` given as a row-major chunk) into `target`.
 * The writes for one input feature are contiguous in the transposed layout, so the loop runs over k outside.
 */
export function quantizeInt8Rows(chunk: Float32Array, firstRow: number, inFeatures: number, target: Int8Weight): void {
  const rows = chunk.length / inFeatures;
  const outFeatures = target.scales.length;
  const inverse = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let k = r * inFeatures, end = k + inFeatures; k < end; k++) max = Math.max(max, Math.abs(chunk[k]));
    checkFinite(max, firstRow + r);
    const scale = Math.fround(max / 127);
    target.scales[firstRow + r] = scale;
    inverse[r] = scale > 0 ? 1 / scale : 0;
  }
  const { q } = target;
  for (let k = 0; k < inFeatures; k++) {
    const base = k * outFeatures + firstRow;
    for (let r = 0; r < rows; r++) {
      const v = Math.round(chunk[r * inFeatures + k] * inverse[r]);
      q[base + r] = v > 127 ? 127 : v < -127 ? -127 : v;
    }
  }
}

export function quantizeInt8(w: Float32Array, outFeatures: number, inFeatures: number): Int8Weight {
  const target = allocInt8(outFeatures, inFeatures);
  quantizeInt8Rows(w, 0, inFeatures, target);
  return target;
}

/** The weight the int8 graph multiplies by, back in torch's [out, in] layout. */
export function dequantizeInt8(w: Int8Weight, outFeatures: number, inFeatures: number): Float32Array {
  const out = new Float32Array(outFeatures * inFeatures);
  for (let n = 0; n < outFeatures; n++) {
    for (let k = 0; k < inFeatures; k++) out[n * inFeatures + k] = w.q[k * outFeatures + n] * w.scales[n];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// int4: blocks of 32 along K, asymmetric, MatMulNBits layout.

export interface Int4Weight {
  /** [N, kBlocks, 16] uint8: value 2j in the low nibble, 2j+1 in the high nibble. */
  b: Uint8Array;
  /** [N · kBlocks]: ŵ = (q − zp) · scale. */
  scales: Float32Array;
  /** [N · ceil(kBlocks / 2)] uint8, packed like `b`. */
  zeroPoints: Uint8Array;
}

export function int4Blocks(inFeatures: number): number {
  return Math.ceil(inFeatures / INT4_BLOCK_SIZE);
}

export function int4Shapes(outFeatures: number, inFeatures: number): { b: number[]; scales: number[]; zeroPoints: number[] } {
  const kBlocks = int4Blocks(inFeatures);
  return { b: [outFeatures, kBlocks, INT4_BLOB_SIZE], scales: [outFeatures * kBlocks], zeroPoints: [outFeatures * Math.ceil(kBlocks / 2)] };
}

export function allocInt4(outFeatures: number, inFeatures: number): Int4Weight {
  const s = int4Shapes(outFeatures, inFeatures);
  return { b: new Uint8Array(s.b[0] * s.b[1] * s.b[2]), scales: new Float32Array(s.scales[0]), zeroPoints: new Uint8Array(s.zeroPoints[0]) };
}

/** Quantizes rows `firstRow ..` of a torch [out, in] weight (a row-major chunk) into `target`. */
export function quantizeInt4Rows(chunk: Float32Array, firstRow: number, inFeatures: number, target: Int4Weight): void {
  const rows = chunk.length / inFeatures;
  const kBlocks = int4Blocks(inFeatures);
  const zpBytes = Math.ceil(kBlocks / 2);
  const levels = new Uint8Array(INT4_BLOCK_SIZE);
  for (let r = 0; r < rows; r++) {
    const n = firstRow + r;
    const row = r * inFeatures;
    for (let blk = 0; blk < kBlocks; blk++) {
      const k0 = blk * INT4_BLOCK_SIZE;
      const k1 = Math.min(k0 + INT4_BLOCK_SIZE, inFeatures);
      // The range includes 0 so the zero point is a level in 0..15 and zero is represented exactly.
      let lo = 0;
      let hi = 0;
      for (let k = k0; k < k1; k++) {
        const v = chunk[row + k];
        if (v < lo) lo = v;
        else if (v > hi) hi = v;
        else if (v !== v) checkFinite(v, n); // NaN passes both comparisons
      }
      checkFinite(hi - lo, n);
      const scale = Math.fround((hi - lo) / 15);
      const zp = scale > 0 ? clamp(Math.round(-lo / scale), 0, 15) : 0;
      const inv = scale > 0 ? 1 / scale : 0;
      // Padding past K gets the zero point (dequantizes to 0); the kernel never reads it against real inputs.
      levels.fill(zp);
      for (let k = k0; k < k1; k++) levels[k - k0] = clamp(Math.round(chunk[row + k] * inv) + zp, 0, 15);
      const blob = (n * kBlocks + blk) * INT4_BLOB_SIZE;
      for (let j = 0; j < INT4_BLOB_SIZE; j++) target.b[blob + j] = levels[2 * j] | (levels[2 * j + 1] << 4);
      target.scales[n * kBlocks + blk] = scale;
      const zpAt = n * zpBytes + (blk >> 1);
      target.zeroPoints[zpAt] = blk & 1 ? (target.zeroPoints[zpAt] & 0x0f) | (zp << 4) : (target.zeroPoints[zpAt] & 0xf0) | zp;
    }
  }
}

export function quantizeInt4(w: Float32Array, outFeatures: number, inFeatures: number): Int4Weight {
  const target = allocInt4(outFeatures, inFeatures);
  quantizeInt4Rows(w, 0, inFeatures, target);
  return target;
}

/** The weight MatMulNBits multiplies by, back in torch's [out, in] layout (padding dropped). */
export function dequantizeInt4(w: Int4Weight, outFeatures: number, inFeatures: number): Float32Array {
  const kBlocks = int4Blocks(inFeatures);
  const zpBytes = Math.ceil(kBlocks / 2);
  const out = new Float32Array(outFeatures * inFeatures);
  for (let n = 0; n < outFeatures; n++) {
    for (let k = 0; k < inFeatures; k++) {
      const blk = Math.floor(k / INT4_BLOCK_SIZE);
      const i = k % INT4_BLOCK_SIZE;
      const byte = w.b[(n * kBlocks + blk) * INT4_BLOB_SIZE + (i >> 1)];
      const q = i & 1 ? byte >> 4 : byte & 0x0f;
      const zpByte = w.zeroPoints[n * zpBytes + (blk >> 1)];
      const zp = blk & 1 ? zpByte >> 4 : zpByte & 0x0f;
      out[n * inFeatures + k] = (q - zp) * w.scales[n * kBlocks + blk];
    }
  }
  return out;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** An inf/NaN weight would make every value of its row (or block) garbage: refuse it. */
function checkFinite(range: number, row: number): void {
  if (!Number.isFinite(range)) throw new NonFiniteRowError(row);
}

/** Thrown by the row quantizers; the loader turns it into a `NonFiniteWeightError` naming file and tensor. */
export class NonFiniteRowError extends Error {
  override name = "NonFiniteRowError";
  constructor(readonly row: number) {
    super(`row ${row} holds an infinite or NaN value`);
  }
}

/** A weight chosen for quantization holds inf or NaN (defined in io/errors.ts, where the load-time scan throws it too). */
export { NonFiniteWeightError };

// ---------------------------------------------------------------------------------------------------------------
// Tensors in the quantized file and the graph side.

/** A torch Linear: the tensor prefix (`<prefix>.weight`) and its [out, in] shape. */
export interface LinearSpec {
  prefix: string;
  shape: [out: number, inp: number];
}

export interface QuantizedTensorSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

/** Names of the tensors that replace `<prefix>.weight`, with their dtypes and shapes. */
export function quantizedTensors(method: QuantizeMethod, spec: LinearSpec): { q: QuantizedTensorSpec; scales: QuantizedTensorSpec; zeroPoints?: QuantizedTensorSpec } {
  const [out, inp] = spec.shape;
  const base = `${spec.prefix}.weight`;
  if (method === "int8") {
    return { q: { name: `${base}_q8`, dtype: "I8", shape: [inp, out] }, scales: { name: `${base}_q8_scale`, dtype: "F32", shape: [out] } };
  }
  const s = int4Shapes(out, inp);
  return {
    q: { name: `${base}_q4`, dtype: "U8", shape: s.b },
    scales: { name: `${base}_q4_scale`, dtype: "F32", shape: s.scales },
    zeroPoints: { name: `${base}_q4_zp`, dtype: "U8", shape: s.zeroPoints },
  };
}

/** Same signature as `linear` in onnx/ops (torch nn.Linear, weight [out, in], optional bias). */
export type LinearFn = (g: GraphBuilder, x: Value, prefix: string, opts?: { bias?: boolean; shape?: [number, number] }) => Value;

export interface QuantizedLinearOptions {
  accuracyLevel?: Int4AccuracyLevel;
}

/**
 * A linear function reading the quantized tensors of `method` (from a WeightSource that holds them next to the
 * original checkpoint); biases stay in float from the checkpoint. A weight without quantized tensors (not
 * chosen for quantization) runs in fp32 as before.
 */
export function quantizedLinear(method: QuantizeMethod, opts: QuantizedLinearOptions = {}): LinearFn {
  const accuracyLevel = parseInt4AccuracyLevel(opts.accuracyLevel, "accuracyLevel");
  return (g, x, prefix, o = {}) => {
    const shape = o.shape ?? (g.weightShape(`${prefix}.weight`) as [number, number]);
    const t = quantizedTensors(method, { prefix, shape });
    if (!g.weights?.has(t.q.name)) return fp32Linear(g, x, prefix, o);
    const [out, inp] = shape;
    const inputs = [x, g.rawWeight(t.q.name, t.q.shape), g.rawWeight(t.scales.name, t.scales.shape)];
    const bias = o.bias === false ? undefined : g.weight(`${prefix}.bias`, [out]);
    if (method === "int8") {
      // The bias goes in as DynamicQuantizeMatMul's input 4 (after the absent zero point): added while the int32
      // result is scaled, instead of one more pass over the output (an Add per Linear: ~6 % of an int8 step).
      return g.op("DynamicQuantizeMatMul", bias ? [...inputs, "", bias] : inputs, {}, { domain: "com.microsoft", name: `${prefix}/dqmm` });
    }
    const y = g.op("MatMulNBits", [...inputs, g.rawWeight(t.zeroPoints!.name, t.zeroPoints!.shape)],
      { K: inp, N: out, bits: 4, block_size: INT4_BLOCK_SIZE, accuracy_level: accuracyLevel },
      { domain: "com.microsoft", name: `${prefix}/matmul_nbits` });
    return bias ? g.op("Add", [y, bias], {}, { name: `${prefix}/bias` }) : y;
  };
}

/**
 * Runs a graph build with a linear function that only records every Linear it is asked for (returning its
 * input, so nothing reads the weight: a weight in a dtype the fp32 path refuses still reaches the quantizer's
 * own, clearer error). The graph itself is thrown away.
 */
export function collectLinears(build: (linear: LinearFn) => unknown): LinearSpec[] {
  const found = new Map<string, LinearSpec>();
  build((g, x, prefix, o = {}) => {
    const shape = o.shape ?? (g.weightShape(`${prefix}.weight`) as [number, number]);
    if (!found.has(prefix)) found.set(prefix, { prefix, shape: [shape[0], shape[1]] });
    return x;
  });
  return [...found.values()];
}
