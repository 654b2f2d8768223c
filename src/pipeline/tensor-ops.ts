/**
 * The few tensor operations the pipeline does in TypeScript between model calls (all float32, like torch).
 */
import type { Tensor } from "../models/model";

type Data = Float32Array | BigInt64Array;

function rowSize(dims: readonly number[]): number {
  return dims.slice(1).reduce((a, b) => a * b, 1);
}

/** torch.cat along dim 0. */
export function catBatch<T extends Data>(a: Tensor<T>, b: Tensor<T>): Tensor<T> {
  const data = new (a.data.constructor as { new (n: number): T })(a.data.length + b.data.length);
  data.set(a.data as never);
  data.set(b.data as never, a.data.length);
  return { data, dims: [a.dims[0] + b.dims[0], ...a.dims.slice(1)] };
}

/** Each row repeated `n` times in place ([p0, p0, p1, p1] for n = 2), as encode_prompt's repeat + view does. */
export function repeatRows<T extends Data>(t: Tensor<T>, n: number): Tensor<T> {
  if (n === 1) return t;
  const size = rowSize(t.dims);
  const data = new (t.data.constructor as { new (n: number): T })(t.data.length * n);
  for (let r = 0; r < t.dims[0]; r++) {
    const row = t.data.subarray(r * size, (r + 1) * size);
    for (let k = 0; k < n; k++) data.set(row as never, (r * n + k) * size);
  }
  return { data, dims: [t.dims[0] * n, ...t.dims.slice(1)] };
}

/** uncond + scale·(text − uncond) over a [2B, …] batch whose first half is unconditional. */
export function classifierFreeGuidance(out: Tensor, guidanceScale: number): Tensor {
  const half = out.data.length / 2;
  const g = Math.fround(guidanceScale);
  const f = Math.fround;
  const data = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const u = out.data[i];
    data[i] = f(u + f(g * f(out.data[half + i] - u)));
  }
  return { data, dims: [out.dims[0] / 2, ...out.dims.slice(1)] };
}

/** Channels [0, channels) of an NCHW tensor (the ε half of a learned-sigma output). */
export function firstChannels(t: Tensor, channels: number): Tensor {
  const [n, c, h, w] = t.dims;
  if (c === channels) return t;
  const plane = h * w;
  const data = new Float32Array(n * channels * plane);
  for (let b = 0; b < n; b++) data.set(t.data.subarray(b * c * plane, (b * c + channels) * plane), b * channels * plane);
  return { data, dims: [n, channels, h, w] };
}

export function scale(t: Tensor, factor: number): Tensor {
  if (factor === 1) return t;
  const s = Math.fround(factor);
  return { data: t.data.map((v) => v * s), dims: t.dims };
}
