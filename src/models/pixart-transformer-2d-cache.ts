/**
 * Step caching for the PixArt transformer: FORA (Selvaraju et al. 2024, "FORA: Fast-Forward Caching in Diffusion
 * Transformer Acceleration"), training-free and opt-in.
 *
 * Adjacent denoising steps compute nearly the same self-attention and feed-forward outputs. FORA computes them on a
 * "full" step every `interval` steps (steps 0, N, 2N, ... of a denoising loop) and reuses them on the N − 1 steps
 * in between. What it caches is each block's *un-gated* outputs, `attn1(modulate(norm1(x)))` and
 * `ff(modulate(norm2(x)))`, and the reusing step still multiplies them by its own gates (gate_msa, gate_mlp from
 * scale_shift_table + the new timestep's embedding), as FORA's DiT code does. So a reusing step still runs: the
 * patch and timestep embeddings, every block's modulation vectors and gated residual adds, the cross-attention
 * (recomputed: in PixArt it reads the residual stream with no norm and no gate, its keys and values are already
 * cached per prompt, and with ≤ 300 text keys its cost is about a seventh of a block's Linear work), and the final
 * layer. It skips norm1 + attn1 (Q/K/V/out projections and the image-token attention) and norm2 + the feed-forward.
 *
 * In ONNX terms: two variants of the step graph, beside the default one (which is unchanged). The "save" variant is
 * the default graph plus `layers × 2` outputs, `foraAttentionName(i)` / `foraFeedForwardName(i)`; the "reuse"
 * variant takes those as inputs instead of computing them. The cache between steps holds those outputs:
 * `layers × 2 × batch × image tokens × inner dim` float32s (PixArt-Σ, CFG batch 2: 28 × 2 × 2 × 1024 × 1152 × 4 B
 * = 528 MB at 512 px, 2.1 GB at 1024 px).
 */
import type { GraphBuilder, Value } from "../onnx/graph";

/**
 * FORA's options, passed to `PixArtTransformer2DModel.enableCache` (diffusers' `transformer.enable_cache(config)`
 * shape: the cache is a property of the transformer, the pipeline only resets it at the start of each call).
 */
export interface ForaCacheConfig {
  method: "fora";
  /**
   * N: a full step every N steps, N − 1 reusing steps after it. 1 makes every step a full one (the same image as
   * no cache, at the cost of copying the cache out). FORA's paper uses 2–3 for 20–50 steps.
   */
  interval: number;
}

export type TransformerCacheConfig = ForaCacheConfig;

/** A wrong cache option: names the field and what was expected. */
export class CacheOptionError extends Error {
  override name = "CacheOptionError";
  constructor(readonly argument: string, message: string) {
    super(`${argument}: ${message}`);
  }
}

/** Checks a cache config (at enableCache, before anything runs). */
export function parseCacheConfig(config: unknown): TransformerCacheConfig {
  if (typeof config !== "object" || config === null) {
    throw new CacheOptionError("config", `expected an object such as { method: "fora", interval: 2 }, got ${String(config)}`);
  }
  const { method, interval } = config as Record<string, unknown>;
  if (method !== "fora") throw new CacheOptionError("config.method", `expected "fora", got ${JSON.stringify(method)}`);
  if (typeof interval !== "number" || !Number.isInteger(interval) || interval < 1 || interval > 1000) {
    throw new CacheOptionError("config.interval", `expected an integer from 1 to 1000, got ${JSON.stringify(interval)}`);
  }
  return { method, interval };
}

/** Output of the save variant and input of the reuse variant: block `layer`'s un-gated self-attention output. */
export function foraAttentionName(layer: number): string {
  return `fora_attn1.${layer}`;
}

/** As foraAttentionName, for the feed-forward output. */
export function foraFeedForwardName(layer: number): string {
  return `fora_ff.${layer}`;
}

/**
 * What a step graph under construction does with each block's self-attention and feed-forward: "save" computes
 * them and also outputs them, "reuse" reads them from inputs (and never builds the nodes that compute them).
 */
export class ForaGraphCache {
  constructor(private readonly g: GraphBuilder, readonly mode: "save" | "reuse", private readonly innerDim: number) {}

  /** Block `layer`'s un-gated attn1 output, [B, tokens, inner dim]: `compute()` or the cached input. */
  attention(layer: number, compute: () => Value): Value {
    return this.value(foraAttentionName(layer), compute);
  }

  /** Block `layer`'s un-gated feed-forward output. */
  feedForward(layer: number, compute: () => Value): Value {
    return this.value(foraFeedForwardName(layer), compute);
  }

  private value(name: string, compute: () => Value): Value {
    const dims = ["batch", "tokens", this.innerDim] as const;
    if (this.mode === "reuse") return this.g.input(name, "float32", dims);
    const v = compute();
    this.g.output(v, name, "float32", dims);
    return v;
  }
}

/**
 * The cache between steps: the save variant's outputs and the step count since the last reset. A step is a full
 * one when its index (0-based, since reset()) is a multiple of the interval, or when what is cached does not fit
 * this step (another batch, image size or prompt), which also restarts the count.
 */
export class ForaStepCache<T extends { readonly data: unknown }> {
  private step = 0;
  private entry?: { key: string; text: object; outputs: Record<string, T> };

  constructor(readonly config: ForaCacheConfig, private readonly layers: number) {}

  /**
   * The cached outputs to feed this step, or undefined for a full step. Advances the step count. `key` names the
   * step's shapes, `text` is the prompt's keys and values (the same object while the prompt is the same).
   */
  next(key: string, text: object): Record<string, T> | undefined {
    if (this.entry?.key !== key || this.entry.text !== text) {
      this.entry = undefined;
      this.step = 0;
    }
    const full = this.step % this.config.interval === 0;
    this.step++;
    return full ? undefined : this.entry!.outputs;
  }

  /** Keeps a full step's save-variant outputs (those named foraAttentionName / foraFeedForwardName). */
  store(key: string, text: object, outputs: Readonly<Record<string, T>>): void {
    const kept: Record<string, T> = {};
    for (let i = 0; i < this.layers; i++) {
      for (const name of [foraAttentionName(i), foraFeedForwardName(i)]) kept[name] = outputs[name];
    }
    this.entry = { key, text, outputs: kept };
  }

  /** The next step is a full one (the pipeline calls this at the start of every denoising loop). */
  reset(): void {
    this.entry = undefined;
    this.step = 0;
  }

  /** Bytes held between steps. */
  get bytes(): number {
    if (!this.entry) return 0;
    return Object.values(this.entry.outputs).reduce((n, t) => n + (t.data as ArrayBufferView).byteLength, 0);
  }
}
