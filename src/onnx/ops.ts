/**
 * Layer helpers shared by the model graphs. Each mirrors one torch module and reads weights by their
 * state-dict prefix, so model files read like the diffusers/transformers forward pass.
 */
import { GraphBuilder, float, type AttrValue, type Value } from "./graph";
import { OnnxType } from "./proto";

/**
 * torch `nn.Linear`: y = x Wᵀ + b with W stored [out, in]. FusedMatMul(transB=1) reads W in place
 * (a Transpose node would be constant-folded into an anonymous copy of the weight).
 */
export function linear(g: GraphBuilder, x: Value, prefix: string, opts: { bias?: boolean; shape?: [number, number] } = {}): Value {
  const w = g.weight(`${prefix}.weight`, opts.shape);
  const y = g.op("FusedMatMul", [x, w], { transB: 1, alpha: float(1) }, { domain: "com.microsoft", name: `${prefix}/matmul` });
  if (opts.bias === false) return y;
  return g.op("Add", [y, g.weight(`${prefix}.bias`, opts.shape ? [opts.shape[0]] : undefined)], {}, { name: `${prefix}/bias` });
}

/** LayerNorm over the last axis; affine only when `prefix` is given (weight/bias from the checkpoint). */
export function layerNorm(g: GraphBuilder, x: Value, dim: number, eps: number, prefix?: string): Value {
  const scale = prefix ? g.weight(`${prefix}.weight`, [dim]) : g.constF32(new Float32Array(dim).fill(1), [dim]);
  const bias = prefix ? g.weight(`${prefix}.bias`, [dim]) : "";
  return g.op("LayerNormalization", bias ? [x, scale, bias] : [x, scale], { axis: -1, epsilon: float(eps) }, { name: prefix ? `${prefix}/ln` : "ln" });
}

export function silu(g: GraphBuilder, x: Value): Value {
  return g.op("Mul", [x, g.op("Sigmoid", [x])], {}, { name: "silu" });
}

/** GELU with the tanh approximation (torch `GELU(approximate="tanh")`, transformers `gelu_new`). */
export function geluTanh(g: GraphBuilder, x: Value): Value {
  return g.op("Gelu", [x], { approximate: "tanh" });
}

export function reshape(g: GraphBuilder, x: Value, shape: readonly number[] | Value): Value {
  return g.op("Reshape", [x, typeof shape === "string" ? shape : g.constI64(shape)]);
}

export function transpose(g: GraphBuilder, x: Value, perm: readonly number[]): Value {
  return g.op("Transpose", [x], { perm: [...perm] });
}

/** Splits `x` along `axis` into `n` equal parts. */
export function chunk(g: GraphBuilder, x: Value, n: number, axis: number): Value[] {
  return g.opN("Split", [x], { axis, num_outputs: n }, { outputs: n });
}

/** Dimension `axis` of `x` as a 1-element int64 tensor (for building dynamic shapes). */
export function dim(g: GraphBuilder, x: Value, axis: number): Value {
  return g.op("Shape", [x], { start: axis, end: axis + 1 });
}

export function concatShape(g: GraphBuilder, parts: readonly (Value | number)[]): Value {
  return g.op("Concat", parts.map((p) => (typeof p === "number" ? g.constI64([p]) : p)), { axis: 0 });
}

export interface AttentionMasks {
  /** int32 [B, L]: 1 keeps a key, 0 masks it (onnxruntime applies its mask_filter_value, -10000 by default). */
  keyPaddingMask?: Value;
  /** Additive float bias broadcastable to [B, heads, S, L]. */
  attentionBias?: Value;
}

/**
 * Scaled dot-product attention over [B, S, heads·headDim] projections with com.microsoft MultiHeadAttention,
 * which never materializes the S×L probability matrix.
 */
export function multiHeadAttention(
  g: GraphBuilder, q: Value, k: Value, v: Value, heads: number, opts: AttentionMasks & { scale?: number } = {},
): Value {
  const inputs: (Value | "")[] = [q, k, v, "", opts.keyPaddingMask ?? ""];
  // Input 5 (after bias, key_padding_mask); 6 and 7 are past_key / past_value.
  if (opts.attentionBias) inputs.push(opts.attentionBias);
  while (inputs[inputs.length - 1] === "") inputs.pop();
  const attrs: Record<string, AttrValue> = { num_heads: heads };
  if (opts.scale !== undefined) attrs.scale = float(opts.scale);
  return g.op("MultiHeadAttention", inputs, attrs, { domain: "com.microsoft", name: "mha" });
}

/**
 * torch `nn.GroupNorm` (affine) over [N, C, H, W]. The group statistics are summed in two levels, over W and then
 * over the group's (C/G)·H rows, and the variance is taken about the mean (two passes), as torch's own kernel keeps
 * its error from growing with the group's size. onnxruntime's InstanceNormalization (the formulation until
 * December 2026) accumulates each group in one pass of float32 partial sums: against float64 its max error grew
 * from 2.9e-6 on groups of 65,536 values to 4.7e-4 on groups of 4,194,304 (the SDXL decoder's last blocks at
 * 1024 px), which put a 1024 px decode 5.1e-4 from diffusers' (diffusers' two attention kernels: 8.6e-6).
 * GroupNormalization-21 loses precision when activations have a large mean; com.microsoft GroupNorm has no CPU
 * kernel. The group's 1/σ and the channel's weight are folded into one per-channel scale, so the full-size tensor
 * is written as often as before: centred once, scaled once, shifted once.
 */
export function groupNorm(g: GraphBuilder, x: Value, prefix: string, groups: number, channels: number, eps: number): Value {
  const rows = g.constI64([2]);
  const columns = g.constI64([3]);
  const grouped = reshape(g, x, [0, groups, -1, 0]); // [N, G, (C/G)·H, W]
  const mean = g.op("ReduceMean", [g.op("ReduceMean", [grouped, columns], { keepdims: 1 }), rows], { keepdims: 1 });
  const centred = g.op("Sub", [grouped, mean], {}, { name: `${prefix}/centre` });
  const sumSquares = g.op("ReduceMean", [g.op("ReduceSumSquare", [centred, columns], { keepdims: 1 }), rows], { keepdims: 1 });
  const variance = g.op("Div", [sumSquares, g.op("Cast", [dim(g, x, 3)], { to: OnnxType.FLOAT })]);
  const rstd = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [variance, g.constF32(eps)])])]); // [N, G, 1, 1]
  const perGroup = channels / groups;
  const rstdPerChannel = reshape(g, g.op("Expand", [reshape(g, rstd, [0, groups, 1]), g.constI64([1, groups, perGroup])]), [0, channels, 1, 1]);
  const perChannel = (name: string) => reshape(g, g.weight(`${prefix}.${name}`, [channels]), [channels, 1, 1]);
  const scale = g.op("Mul", [rstdPerChannel, perChannel("weight")]);
  const scaled = g.op("Mul", [reshape(g, centred, g.op("Shape", [x])), scale], {}, { name: `${prefix}/scale` });
  return g.op("Add", [scaled, perChannel("bias")], {}, { name: `${prefix}/shift` });
}

/** torch `nn.Conv2d` with stride 1 and "same" zero padding (odd kernel), weight [out, in, k, k] read in place. */
export function conv2d(g: GraphBuilder, x: Value, prefix: string, opts: { inChannels: number; outChannels: number; kernel: number }): Value {
  const { inChannels, outChannels, kernel } = opts;
  const w = g.weight(`${prefix}.weight`, [outChannels, inChannels, kernel, kernel]);
  const b = g.weight(`${prefix}.bias`, [outChannels]);
  const p = (kernel - 1) / 2;
  return g.op("Conv", [x, w, b], { kernel_shape: [kernel, kernel], pads: [p, p, p, p] }, { name: `${prefix}/conv` });
}

/**
 * `F.interpolate(scale_factor=2, mode="nearest")` followed by a 3×3 conv with padding 1 (diffusers' Upsample2D),
 * computed at the input's resolution: 4/9 of the multiply-adds, and no upsampled copy of the input.
 *
 * Output pixel (2i + a, 2j + b) sees upsampled rows 2i + a − 1 … 2i + a + 1, i.e. input rows {i − 1, i, i} for
 * a = 0 and {i, i, i + 1} for a = 1 (columns alike). So each of the four phases (a, b) is a 2×2 conv of the input
 * whose taps are sums of the 3×3 taps landing on the same input pixel, padded on the side the phase reaches
 * past; DepthToSpace interleaves the phases. The summed taps are rounded once, so results differ from
 * upsample-then-conv by float rounding only (≈ 1e-6 relative; the VAE parity tests hold unchanged).
 */
export function upsampleConv2d(g: GraphBuilder, x: Value, prefix: string, channels: number): Value {
  const w = g.weight(`${prefix}.weight`, [channels, channels, 3, 3]);
  const b = g.weight(`${prefix}.bias`, [channels]);
  // Rows 2a and 2a + 1 of `taps` are phase a's two taps along one axis, as sums of the three 3×3 taps.
  const taps = g.constF32(Float32Array.of(1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1), [4, 3]);
  // [C, C, 4, 4] = taps · w · tapsᵀ: entry [2a + i, 2b + j] is tap (i, j) of phase (a, b). Constant-folded at session creation.
  const rows = g.op("MatMul", [taps, w]);
  const phased = g.op("MatMul", [rows, g.op("Transpose", [taps], { perm: [1, 0] })], {}, { name: `${prefix}/phase_taps` });
  const phases: Value[] = [];
  for (const a of [0, 1]) {
    for (const c of [0, 1]) {
      const kernel = g.op("Slice", [phased, g.constI64([2 * a, 2 * c]), g.constI64([2 * a + 2, 2 * c + 2]), g.constI64([2, 3])]);
      // pads: [top, left, bottom, right]; phase 0 reaches one input pixel up/left, phase 1 one down/right.
      const pads = [1 - a, 1 - c, a, c];
      phases.push(g.op("Conv", [x, kernel, b], { kernel_shape: [2, 2], pads }, { name: `${prefix}/conv_phase${a}${c}` }));
    }
  }
  // DCR: output channel c at (2i + a, 2j + b) reads input channel (2a + b)·C + c, the phases' concat order.
  return g.op("DepthToSpace", [g.op("Concat", phases, { axis: 1 })], { blocksize: 2, mode: "DCR" }, { name: `${prefix}/interleave` });
}
