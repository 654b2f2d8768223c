/**
 * A seeded generator that draws the same numbers as `torch.Generator("cpu").manual_seed(seed)`:
 * `randn` equals `torch.randn(shape, generator=g)` (float32) bit for bit, and consecutive draws advance the
 * state the same way, so a seed gives the same initial latents as diffusers.
 *
 * How torch draws float32 normals on the CPU (ATen `normal_kernel`):
 * - tensors of 16 or more elements: every element first gets a uniform (u32 & 0xFFFFFF)·2⁻²⁴, then each
 *   block of 16 is transformed by Box-Muller on the pairs (j, j+8); when the size is not a multiple of 16,
 *   16 fresh uniforms are drawn for the last 16 elements, which are transformed again. The float32
 *   log/sin/cos used depend on torch's CPU kernel: see `NormalKernel`.
 * - fewer than 16 elements: per element, double-precision Box-Muller from 53-bit uniforms, the second value
 *   of each pair cached in the generator for the next such draw.
 */

import { Mt19937, Mt19937State } from "./mt19937";
import { logF32Avx2, sinCosF32Avx2 } from "./float32-math";

const fr = Math.fround;

/** torch's default CPU seed (`default_rng_seed_val`), used by `torch.Generator()` before any manual_seed. */
export const TORCH_DEFAULT_SEED = 67280421310721n;

const TWO_POW_64 = 1n << 64n;
const INT64_MIN = -(1n << 63n);

/**
 * Which of torch's float32 Box-Muller kernels to reproduce.
 * - "avx2": torch on x86-64 CPUs with AVX2 or AVX-512 (its default there): Cephes float32 polynomials.
 *   Bit-identical.
 * - "generic": torch builds without that kernel (ARM CPUs such as Apple silicon, or ATEN_CPU_CAPABILITY=default):
 *   the C library's float logf/cosf/sinf, reproduced here by rounding the double results, which can differ
 *   from a given libm in the last bit.
 */
export type NormalKernel = "avx2" | "generic";

export interface TorchGeneratorOptions {
  normalKernel?: NormalKernel;
}

/** The complete generator state; `setState` of a copy resumes the exact stream. */
export interface TorchGeneratorState {
  readonly seed: bigint;
  readonly engine: Mt19937State;
  readonly cachedNormal: number | null;
}

/** A bad seed, shape or option given to the generator. */
export class RandomArgumentError extends Error {
  override readonly name = "RandomArgumentError";
}

export type Shape = number | readonly number[];

/** Number of elements of a shape given as a count or a list of dimensions; rejects anything else. */
export function shapeSize(shape: Shape, what = "shape"): number {
  const dims = typeof shape === "number" ? [shape] : shape;
  if (!Array.isArray(dims)) throw new RandomArgumentError(`${what} must be a number or an array of numbers`);
  let size = 1;
  for (const d of dims) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RandomArgumentError(`${what} must contain non-negative integers, got [${dims.join(", ")}]`);
    }
    size *= d;
  }
  if (!Number.isSafeInteger(size)) throw new RandomArgumentError(`${what} [${dims.join(", ")}] is too large`);
  return size;
}

/** A torch seed (any integer in [−2⁶³, 2⁶⁴)) as the unsigned 64-bit value torch stores. */
function normaliseSeed(seed: number | bigint): bigint {
  let value: bigint;
  if (typeof seed === "bigint") {
    value = seed;
  } else if (typeof seed === "number" && Number.isSafeInteger(seed)) {
    value = BigInt(seed);
  } else {
    throw new RandomArgumentError(
      `seed must be an integer (a bigint for values beyond 2^53), got ${String(seed)}`);
  }
  if (value < INT64_MIN || value >= TWO_POW_64) {
    throw new RandomArgumentError(`seed must lie in [-2^63, 2^64), got ${value}`);
  }
  return value < 0n ? value + TWO_POW_64 : value;
}

export class TorchGenerator {
  readonly normalKernel: NormalKernel;
  private readonly engine = new Mt19937();
  private seedValue = TORCH_DEFAULT_SEED;
  /** Second value of the last double Box-Muller pair (torch's `next_double_normal_sample`). */
  private cachedNormal: number | null = null;
  private readonly sinCos = new Float64Array(2);

  constructor(seed: number | bigint = TORCH_DEFAULT_SEED, options: TorchGeneratorOptions = {}) {
    const kernel = options.normalKernel ?? "avx2";
    if (kernel !== "avx2" && kernel !== "generic") {
      throw new RandomArgumentError(`normalKernel must be "avx2" or "generic", got ${JSON.stringify(kernel)}`);
    }
    this.normalKernel = kernel;
    this.manualSeed(seed);
  }

  /** Like `torch.Generator.manual_seed`: resets the engine and the cached normal; returns this. */
  manualSeed(seed: number | bigint): this {
    this.seedValue = normaliseSeed(seed);
    this.engine.seed(Number(this.seedValue & 0xffffffffn));
    this.cachedNormal = null;
    return this;
  }

  /** The seed as torch reports it (`initial_seed()`), an unsigned 64-bit value. */
  initialSeed(): bigint {
    return this.seedValue;
  }

  getState(): TorchGeneratorState {
    return { seed: this.seedValue, engine: this.engine.getState(), cachedNormal: this.cachedNormal };
  }

  setState(state: TorchGeneratorState): this {
    this.seedValue = state.seed;
    this.engine.setState(state.engine);
    this.cachedNormal = state.cachedNormal;
    return this;
  }

  /** An independent generator at the same point of the stream. */
  clone(): TorchGenerator {
    return new TorchGenerator(0, { normalKernel: this.normalKernel }).setState(this.getState());
  }

  /** `torch.rand(shape, generator=g)` (float32 uniforms in [0, 1)). */
  rand(shape: Shape): Float32Array {
    const out = new Float32Array(shapeSize(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.uniformFloat();
    return out;
  }

  /** `torch.randn(shape, generator=g)` (float32 standard normals), contiguous in row-major order. */
  randn(shape: Shape): Float32Array {
    const size = shapeSize(shape);
    const out = new Float32Array(size);
    if (size >= 16) {
      this.fillNormalBlocks(out);
    } else {
      for (let i = 0; i < size; i++) out[i] = this.normalDouble();
    }
    return out;
  }

  /** A float32 uniform from 24 random bits (torch's `uniform_real_distribution<float>(0, 1)`). */
  private uniformFloat(): number {
    return (this.engine.nextU32() & 0xffffff) * 2 ** -24;
  }

  /** A double uniform from 53 random bits of two draws, the first being the high word (torch's `random64`). */
  private uniformDouble(): number {
    const high = this.engine.nextU32();
    const low = this.engine.nextU32();
    return ((high & 0x1fffff) * 2 ** 32 + low) * 2 ** -53;
  }

  /** torch's `normal_distribution<double>`: Box-Muller in double, caching the sine half. */
  private normalDouble(): number {
    if (this.cachedNormal !== null) {
      const cached = this.cachedNormal;
      this.cachedNormal = null;
      return cached + 0;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const radius = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta) + 0;
  }

  private fillNormalBlocks(out: Float32Array): void {
    const size = out.length;
    for (let i = 0; i < size; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= size; i += 16) this.boxMuller16(out, i);
    if (size % 16 !== 0) {
      const start = size - 16;
      for (let i = start; i < size; i++) out[i] = this.uniformFloat();
      this.boxMuller16(out, start);
    }
  }

  /** Turns 16 uniforms at `offset` into normals: pairs (j, j+8) give cos and sin halves. */
  private boxMuller16(data: Float32Array, offset: number): void {
    const sc = this.sinCos;
    const avx2 = this.normalKernel === "avx2";
    for (let j = offset; j < offset + 8; j++) {
      const u1 = fr(1 - data[j]);
      const u2 = data[j + 8];
      let radius: number;
      if (avx2) {
        radius = fr(Math.sqrt(fr(-2 * logF32Avx2(u1))));
        sinCosF32Avx2(fr(fr(2 * Math.PI) * u2), sc);
      } else {
        radius = fr(Math.sqrt(fr(-2 * fr(Math.log(u1)))));
        const theta = fr(2 * Math.PI * u2); // formed in double, stored as float
        sc[0] = fr(Math.sin(theta));
        sc[1] = fr(Math.cos(theta));
      }
      // torch adds the mean (0) with a fused multiply-add, which turns −0 into +0.
      data[j] = fr(radius * sc[1]) + 0;
      data[j + 8] = fr(radius * sc[0]) + 0;
    }
  }
}
