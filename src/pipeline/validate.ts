/**
 * Argument checks of the pipeline that must run before anything is allocated or any model runs: types (a
 * number where a prompt belongs), tensors whose data does not fill their dims, sizes and counts beyond what
 * this machine can hold, timesteps outside the scheduler's training range, non-finite values.
 *
 * Every check throws a `PipelineArgumentError` naming the argument and the limit. The stage checks
 * (`checkFinite`) throw a `NonFiniteTensorError` naming the stage and step instead of letting NaN become a
 * black image.
 */
import * as os from "os";
import type { Tensor } from "../models/model";

/** A wrong argument to the pipeline: names the argument and what was expected. */
export class PipelineArgumentError extends Error {
  override name = "PipelineArgumentError";
  constructor(readonly argument: string, message: string) {
    super(`${argument}: ${message}`);
  }
}

/** A tensor between two stages holds NaN or ±Infinity (broken weights, inputs or an overflow). */
export class NonFiniteTensorError extends Error {
  override name = "NonFiniteTensorError";
  constructor(readonly stage: string, readonly index: number, readonly value: number, readonly step?: number) {
    super(`${stage}${step === undefined ? "" : ` at step ${step}`}: the output holds ${value} at element ${index}; ` +
      "the weights or inputs give non-finite values (check the checkpoint files and any latents or embeddings passed in)");
  }
}

/**
 * The longest text encoding accepted. T5's attention scores take heads × length² floats per row (64 heads for
 * T5-XXL: 4 GiB at 4096 tokens), and PixArt-Σ was trained with 300.
 */
export const MAX_SEQUENCE_LENGTH = 4096;
/** More images per call than this is a loop the caller should write. */
export const MAX_IMAGES_PER_PROMPT = 64;
/** An image side above this is refused before binning (its resize back alone would take 3 × side² floats). */
export const MAX_IMAGE_SIDE = 16384;

/** Fails unless `v` is an integer in [min, max]. */
export function checkInteger(argument: string, v: unknown, min: number, max: number, why = ""): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    const shown = typeof v === "number" ? String(v) : describe(v);
    throw new PipelineArgumentError(argument, `must be an integer from ${min} to ${max}${why ? ` (${why})` : ""}, got ${shown}`);
  }
  return v;
}

export function checkFiniteNumber(argument: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new PipelineArgumentError(argument, `must be a finite number, got ${typeof v === "number" ? v : describe(v)}`);
  }
  return v;
}

/**
 * Runs argument checks, turning anything an argument throws while being read (a revoked Proxy, a throwing getter)
 * into a PipelineArgumentError for `argument`.
 */
export function readingArgument<T>(argument: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof PipelineArgumentError) throw e;
    let why = "";
    try {
      why = String((e as Error)?.message ?? e);
    } catch {
      // the error itself cannot be read either
    }
    throw new PipelineArgumentError(argument, `could not be read (${why || "reading it threw"})`);
  }
}

/** A string, or a non-empty array of strings. */
export function checkTextList(argument: string, v: unknown): void {
  readingArgument(argument, () => checkTextListUnsafe(argument, v));
}

function checkTextListUnsafe(argument: string, v: unknown): void {
  if (typeof v === "string") return;
  if (!Array.isArray(v)) throw new PipelineArgumentError(argument, `must be a string or an array of strings, got ${describe(v)}`);
  if (v.length === 0) throw new PipelineArgumentError(argument, "the prompt list is empty");
  const bad = v.findIndex((p) => typeof p !== "string");
  if (bad >= 0) throw new PipelineArgumentError(argument, `must be a string or an array of strings; element ${bad} is ${describe(v[bad])}`);
}

/** A size asked for before binning: a finite positive number within MAX_IMAGE_SIDE. */
export function checkRequestedSide(argument: string, v: unknown): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > MAX_IMAGE_SIDE) {
    throw new PipelineArgumentError(argument, `must be a positive number of pixels up to ${MAX_IMAGE_SIDE}, got ${typeof v === "number" ? v : describe(v)}`);
  }
}

/**
 * Custom timesteps: finite, integers within the training range [0, numTrain), strictly descending (diffusers
 * asks for descending timesteps and interpolates anything else into the table's ends without a word).
 */
export function checkTimesteps(v: unknown, numTrain: number): void {
  if (!Array.isArray(v) || v.length === 0) throw new PipelineArgumentError("timesteps", `must be a non-empty array of numbers, got ${describe(v)}`);
  if (v.length > numTrain) throw new PipelineArgumentError("timesteps", `has ${v.length} entries; at most ${numTrain} (num_train_timesteps)`);
  v.forEach((t, i) => {
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0 || t > numTrain - 1) {
      throw new PipelineArgumentError("timesteps", `element ${i} is ${typeof t === "number" ? t : describe(t)}; expected a timestep from 0 to ${numTrain - 1} (num_train_timesteps − 1)`);
    }
    if (i > 0 && !(t < v[i - 1])) throw new PipelineArgumentError("timesteps", `must be strictly descending; element ${i} (${t}) follows ${v[i - 1]}`);
  });
}

const TENSOR_KINDS = { float32: Float32Array, int64: BigInt64Array } as const;

/** A tensor argument: an object with `dims` (positive integers) and a typed `data` of exactly that many elements. */
export function checkTensor(argument: string, t: unknown, kind: keyof typeof TENSOR_KINDS): asserts t is Tensor<Float32Array | BigInt64Array> {
  readingArgument(argument, () => checkTensorUnsafe(argument, t, kind));
}

function checkTensorUnsafe(argument: string, t: unknown, kind: keyof typeof TENSOR_KINDS): void {
  const { data, dims } = (typeof t === "object" && t !== null ? t : {}) as { data?: unknown; dims?: unknown };
  if (!(data instanceof TENSOR_KINDS[kind])) {
    throw new PipelineArgumentError(argument, `must be a tensor { data: ${TENSOR_KINDS[kind].name}, dims }, got ${describe(t)}`);
  }
  if (!Array.isArray(dims) || dims.length === 0 || !dims.every((d) => Number.isSafeInteger(d) && d > 0)) {
    throw new PipelineArgumentError(argument, `dims must be an array of positive integers, got ${describe(dims)}`);
  }
  const size = dims.reduce((a: number, b: number) => a * b, 1);
  if (size !== data.length) {
    throw new PipelineArgumentError(argument, `data has ${data.length} elements but dims [${dims.join(", ")}] need ${size}`);
  }
  if (data instanceof Float32Array) {
    const bad = firstNonFinite(data);
    if (bad >= 0) throw new PipelineArgumentError(argument, `holds ${data[bad]} at element ${bad}; expected finite values`);
  }
}

/** Index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    // v - v is 0 for finite values and NaN for NaN and ±Infinity: one compare per element.
    if (v - v !== 0) return i;
  }
  return -1;
}

/** Throws NonFiniteTensorError when a stage's output is not all finite. */
export function checkFinite(stage: string, t: Tensor, step?: number): void {
  const bad = firstNonFinite(t.data);
  if (bad >= 0) throw new NonFiniteTensorError(stage, bad, t.data[bad]!, step);
}

export interface RunSize {
  batch: number;
  /** Size the models work at (after binning). */
  height: number;
  width: number;
  /** Size of the output (before binning); equal to the above without binning. */
  outHeight: number;
  outWidth: number;
}

/**
 * A rough peak of the largest buffers a run allocates: the VAE decoder's widest activation (128 channels at full
 * size, input and output of a conv) and the resize back to the asked size. (Attention is onnxruntime's
 * MultiHeadAttention, which does not hold a tokens × tokens matrix.) Refuses runs that need more than the
 * machine's memory, before anything is allocated: a height of 1e9 once grew the process until the OS killed it.
 */
export function checkRunFitsMemory(s: RunSize, totalBytes = os.totalmem()): void {
  const decode = s.batch * 128 * s.height * s.width * 4 * 2;
  const resize = s.batch * 3 * (s.height * s.width + 2 * s.outHeight * s.outWidth) * 4;
  const need = Math.max(decode, resize);
  if (need > totalBytes) {
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
    throw new PipelineArgumentError("height", `${s.outHeight} × ${s.outWidth} (${s.height} × ${s.width} in the models) with ${s.batch} image(s) ` +
      `needs about ${gib(need)} at its peak, more than this machine's ${gib(totalBytes)} of memory; ask for fewer or smaller images`);
  }
}

/** Short description of any value for messages; never throws (the value may be a hostile Proxy). */
export function describe(v: unknown): string {
  try {
    if (v === null) return "null";
    if (Array.isArray(v)) return `an array of ${v.length}`;
    if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
    if (typeof v === "object") return `an object (${Object.prototype.toString.call(v)})`;
    if (typeof v === "symbol" || typeof v === "function") return `a ${typeof v}`;
    return `${typeof v} ${String(v)}`;
  } catch {
    return "a value that cannot be inspected";
  }
}
