/**
 * The attention-map variant of the PixArt transformer graph: the default graph plus, for chosen blocks, the
 * cross-attention probabilities averaged over heads as extra outputs.
 *
 * com.microsoft MultiHeadAttention (the default graph's attention) never materialises its probabilities, so this
 * variant computes them a second time from the same query and key projections with plain ops, as diffusers'
 * `Attention.get_attention_scores` does: softmax(scale · Q Kᵀ + (1 − mask) · −10000) per head, then the mean over
 * heads. Keys are the text tokens (≤ 300), so this costs little next to the block itself. The variant is built on
 * demand (see PixArtTransformer2DModel.forwardWithCrossAttention); the default graph never contains these nodes.
 */
import type { GraphBuilder, Value } from "../onnx/graph";
import { reshape, transpose } from "../onnx/ops";

/** Graph input: the first batch row whose probabilities are output (with CFG, the conditional half starts there). */
export const ATTENTION_ROW_START = "attention_row_start";

/** Graph output name of block `layer`'s head-mean cross-attention probabilities, [rows, image tokens, text tokens]. */
export function crossAttentionOutputName(layer: number): string {
  return `cross_attention_probs.${layer}`;
}

/** A wrong attention-map request: names the option and what was expected. */
export class CrossAttentionOptionError extends Error {
  override name = "CrossAttentionOptionError";
  constructor(readonly argument: string, message: string) {
    super(`${argument}: ${message}`);
  }
}

/** Checks a list of block indices (0-based, each once) against a model with `numLayers` blocks. */
export function checkCrossAttentionLayers(layers: unknown, numLayers: number, argument = "layers"): readonly number[] {
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new CrossAttentionOptionError(argument, `expected a non-empty list of block indices in [0, ${numLayers}), got ${String(layers)}`);
  }
  const seen = new Set<number>();
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= numLayers) {
      throw new CrossAttentionOptionError(argument, `expected block indices that are integers in [0, ${numLayers}), got ${JSON.stringify(l)}`);
    }
    if (seen.has(l)) throw new CrossAttentionOptionError(argument, `block ${l} is listed twice`);
    seen.add(l);
  }
  return layers as number[];
}

/**
 * Adds the probability outputs to a transformer graph under construction. Made once per graph (it declares the
 * row-start input and the additive key mask); `record` is called with each block's cross-attention projections.
 */
export class CrossAttentionProbe {
  private readonly wanted: ReadonlySet<number>;
  private readonly rowStart: Value;
  private readonly keyBias: Value;
  private readonly scale: Value;

  constructor(private readonly g: GraphBuilder, layers: readonly number[], private readonly heads: number, private readonly headDim: number,
    encoderMask: Value) {
    this.wanted = new Set(layers);
    this.rowStart = g.input(ATTENTION_ROW_START, "int64", [1]);
    // diffusers turns the 0/1 mask into (1 − mask) · −10000, added to the scaled scores of every head and query.
    const mask = g.op("Cast", [this.rows(encoderMask)], { to: 1 /* float */ });
    const bias = g.op("Mul", [g.op("Sub", [g.constF32(1), mask]), g.constF32(-10000)]);
    this.keyBias = g.op("Unsqueeze", [bias, g.constI64([1, 2])]);
    // Python's dim_head ** -0.5, the scale diffusers passes to baddbmm.
    this.scale = g.constF32(Math.pow(headDim, -0.5));
  }

  /** q: [B, S, heads·headDim], k: [B, L, heads·headDim] → output [B − rowStart, S, L] when `layer` is wanted. */
  record(layer: number, q: Value, k: Value): void {
    if (!this.wanted.has(layer)) return;
    const g = this.g;
    const split = (x: Value, perm: number[]) => transpose(g, reshape(g, this.rows(x), [0, 0, this.heads, this.headDim]), perm);
    const scores = g.op("Mul", [g.op("MatMul", [split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])]), this.scale]);
    const probs = g.op("Softmax", [g.op("Add", [scores, this.keyBias])], { axis: -1 });
    const headMean = g.op("ReduceMean", [probs, g.constI64([1])], { keepdims: 0 });
    g.output(headMean, crossAttentionOutputName(layer), "float32", ["rows", "tokens", "text_len"]);
  }

  /** Batch rows from the row-start input to the end. */
  private rows(x: Value): Value {
    const g = this.g;
    return g.op("Slice", [x, this.rowStart, g.constI64([Number.MAX_SAFE_INTEGER]), g.constI64([0])]);
  }
}
