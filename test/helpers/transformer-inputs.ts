/**
 * Inputs for the transformer unit tests that compare PixArtTransformer2DModel with a session over one step graph
 * built by buildPixArtTransformerGraph (the model's graphs against a plain formulation of the same forward pass).
 */
import * as ort from "onnxruntime-node";
import type { PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";

export interface TransformerTestInput {
  hiddenStates: { data: Float32Array; dims: number[] };
  encoderHiddenStates: { data: Float32Array; dims: number[] };
  encoderAttentionMask: { data: BigInt64Array; dims: number[] };
  timestep: number[];
}

/** One row per entry of `keep` (that row's mask keeps its first `keep[r]` of `len` tokens); padding positions hold non-zero features, as T5's do. */
export function transformerInput(model: PixArtTransformer2DModel, keep: number[], len: number, latent: number, timestep: number[], seed = 0): TransformerTestInput {
  const batch = keep.length;
  const c = model.config.captionChannels!;
  const mask = new BigInt64Array(batch * len);
  keep.forEach((n, r) => mask.fill(1n, r * len, r * len + n));
  return {
    hiddenStates: { data: Float32Array.from({ length: batch * 4 * latent * latent }, (_, i) => Math.sin(i * 0.7 + seed)), dims: [batch, 4, latent, latent] },
    encoderHiddenStates: { data: Float32Array.from({ length: batch * len * c }, (_, i) => Math.cos(i * 0.13 + seed)), dims: [batch, len, c] },
    encoderAttentionMask: { data: mask, dims: [batch, len] },
    timestep,
  };
}

/** Runs a session over a step graph made by buildPixArtTransformerGraph (text as embeddings) on `inp`; returns `sample`. */
export async function runStepGraph(session: ort.InferenceSession, model: PixArtTransformer2DModel, inp: TransformerTestInput): Promise<Float32Array> {
  const p = model.config.patchSize;
  const [batch, , h, w] = inp.hiddenStates.dims;
  const out = await session.run({
    hidden_states: new ort.Tensor("float32", inp.hiddenStates.data, inp.hiddenStates.dims),
    encoder_hidden_states: new ort.Tensor("float32", inp.encoderHiddenStates.data, inp.encoderHiddenStates.dims),
    encoder_attention_mask: new ort.Tensor("int64", inp.encoderAttentionMask.data, inp.encoderAttentionMask.dims),
    timestep: new ort.Tensor("float32", Float32Array.from(inp.timestep), [batch]),
    pos_embed: new ort.Tensor("float32", model.posEmbed(h / p, w / p), [1, (h / p) * (w / p), model.config.innerDim]),
  });
  return out.sample.data as Float32Array;
}

export const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
