/**
 * The denoising loop of PixArt-Σ inside one ONNX graph: k steps of transformer forward, classifier-free guidance and
 * DPM-Solver's update per onnxruntime run, as a `Loop` whose body is the transformer graph of
 * pixart-transformer-2d.ts.
 *
 * Why: onnxruntime-node has no CUDA IO binding, so every run copies its inputs from host memory and its outputs
 * back. Step by step, that is the position table, the text embeddings and the latents on every step (29.2 MB at
 * 1024 px with CFG). Here they cross once per run of k steps, and the latents and the solver's history stay in
 * onnxruntime's memory (on the GPU, device memory) between the steps of a run. The caption projection, which does
 * not depend on the step, is computed once per run, outside the loop.
 *
 * The scheduler's update enters as per-step float32 coefficients computed on the host
 * (DPMSolverMultistepScheduler.linearStepPlan), gathered by the iteration index:
 *
 *     e  = ε part of the transformer output, guided: u + g·(c − u)
 *     m  = (p·x − q·e) / r
 *     x' = (cx·x − c0·m) + c1·(inv·(m − m₋₁))
 *
 * each operation in float32 and in this order, which is what the pipeline's step-by-step loop computes.
 */
import type { WeightSource } from "../io/types";
import { GraphBuilder, type BuiltModel, type Value } from "../onnx/graph";
import { chunk, dim, linear as fp32Linear } from "../onnx/ops";
import type { LinearFn } from "./quantize";
import { pixartBlocksAndOutput, pixartEmbed, pixartTextContext, type PixArtTransformer2DConfig } from "./pixart-transformer-2d";

/** Per-step float32 coefficients of the update above, one entry per step of the run. */
export interface LinearStepPlan {
  /** The timesteps, as the transformer reads them. */
  timesteps: Float32Array;
  p: Float32Array;
  q: Float32Array;
  r: Float32Array;
  cx: Float32Array;
  c0: Float32Array;
  c1: Float32Array;
  inv: Float32Array;
}

/** The coefficient inputs of the graph, in LinearStepPlan's field order. */
export const PLAN_FIELDS = ["timesteps", "p", "q", "r", "cx", "c0", "c1", "inv"] as const satisfies readonly (keyof LinearStepPlan)[];

export interface DenoiseLoopGraphOptions {
  /** Classifier-free guidance: the text inputs hold the unconditional rows first, then the conditional ones. */
  guidance: boolean;
  /** Replaces `linear` from onnx/ops for every nn.Linear (a quantized model passes its own). */
  linear?: LinearFn;
}

/**
 * Inputs: `latents` [B, C, H, W], `encoder_hidden_states` / `encoder_attention_mask` with 2B rows under guidance
 * (else B), `pos_embed`, `guidance_scale` (scalar, under guidance), the plan's arrays [k] and `prev_model_output`
 * (m₋₁, [B, C, H, W]; zeros before the first step). Outputs: `latents_out` and `model_output` (m of the last step).
 */
export function buildPixArtDenoiseLoopGraph(config: PixArtTransformer2DConfig, weights: WeightSource, opts: DenoiseLoopGraphOptions): BuiltModel {
  const linear = opts.linear ?? fp32Linear;
  const C = config.inChannels;
  const g = new GraphBuilder("pixart_denoise_loop", weights);
  const latentDims = ["batch", C, "height", "width"] as const;
  const latents = g.input("latents", "float32", latentDims);
  const textRows = opts.guidance ? "text_batch" : "batch";
  const encoderHiddenStates = g.input("encoder_hidden_states", "float32", [textRows, "text_len", config.captionChannels ?? config.crossAttentionDim]);
  const encoderMask = g.input("encoder_attention_mask", "int64", [textRows, "text_len"]);
  const posEmbed = g.input("pos_embed", "float32", [1, "tokens", config.innerDim]);
  const guidanceScale = opts.guidance ? g.input("guidance_scale", "float32", []) : undefined;
  const plan = Object.fromEntries(PLAN_FIELDS.map((f) => [f, g.input(f, "float32", ["steps"])])) as Record<keyof LinearStepPlan, Value>;
  const prevModelOutput = g.input("prev_model_output", "float32", latentDims);

  // Loop-invariant: computed once per run.
  const text = pixartTextContext(g, config, linear, encoderHiddenStates, encoderMask);
  const tripCount = g.op("Squeeze", [g.op("Shape", [plan.timesteps])]);

  const body = g.subgraph("denoise_step");
  const iter = body.input("iter", "int64", []);
  const cond = body.input("cond", "bool", []);
  const x = body.input("x", "float32", latentDims);
  const mPrev = body.input("m_prev", "float32", latentDims);
  const at = (f: keyof LinearStepPlan) => body.op("Gather", [plan[f], iter], { axis: 0 }, { name: `step.${f}` });

  const modelInput = guidanceScale ? body.op("Concat", [x, x], { axis: 0 }) : x;
  const timestep = body.op("Expand", [at("timesteps"), dim(body, modelInput, 0)]);
  const embedded = pixartEmbed(body, config, linear, { hiddenStates: modelInput, timestep, posEmbed });
  let eps = pixartBlocksAndOutput(body, config, linear, modelInput, embedded, text);
  // Learned sigma: the model predicts [ε, variance]; the scheduler takes ε (channel-wise, so before guidance is the same).
  if (config.outChannels === 2 * C) {
    eps = body.op("Slice", [eps, body.constI64([0]), body.constI64([C]), body.constI64([1])]);
  }
  if (guidanceScale) {
    const [uncond, condPred] = chunk(body, eps, 2, 0);
    eps = body.op("Add", [uncond, body.op("Mul", [guidanceScale, body.op("Sub", [condPred, uncond])])]);
  }
  const m = body.op("Div", [body.op("Sub", [body.op("Mul", [at("p"), x]), body.op("Mul", [at("q"), eps])]), at("r")]);
  const d1 = body.op("Mul", [at("inv"), body.op("Sub", [m, mPrev])]);
  const next = body.op("Add", [body.op("Sub", [body.op("Mul", [at("cx"), x]), body.op("Mul", [at("c0"), m])]), body.op("Mul", [at("c1"), d1])]);
  body.output(cond, "cond_out", "bool", []);
  body.output(next, "x_next", "float32", latentDims);
  body.output(m, "m_next", "float32", latentDims);

  const [latentsOut, modelOutput] = g.opN("Loop", [tripCount, "", latents, prevModelOutput], { body: body.buildSubgraph() },
    { outputs: 2, name: "denoise_loop" });
  g.output(latentsOut, "latents_out", "float32", latentDims);
  g.output(modelOutput, "model_output", "float32", latentDims);
  return g.build();
}
