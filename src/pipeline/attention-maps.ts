/**
 * Cross-attention maps per word, DAAM-style (Tang et al., "What the DAAM", 2022), from the head-mean probabilities
 * that the transformer's attention-map variant returns (models/pixart-transformer-2d-attention.ts).
 *
 * Aggregation: sum over the recorded steps, mean over the recorded blocks (the heads are already averaged),
 * bicubic upsampling of each token's patch-grid map to the generation size (torch's `F.interpolate(mode="bicubic",
 * align_corners=False)`), clamp at 0, and with resolution binning the pipeline's own resize-and-crop back to the
 * asked size. A word's map is the mean of its SentencePiece pieces' maps (T5 has no start token; EOS and padding
 * belong to no word), min-max normalised to [0, 1].
 */
import { CrossAttentionOptionError } from "../models/pixart-transformer-2d-attention";
import type { Tensor } from "../models/model";
import type { T5Tokenizer } from "../tokenizer/t5-tokenizer";
import { resizeAndCrop } from "./resolution-binning";

/** `call({ attention })`: which blocks and steps to record. */
export interface AttentionOptions {
  /** Transformer blocks, 0-based (default: all). */
  layers?: number[];
  /** Denoising steps, 0-based (default: all). */
  steps?: number[];
}

/** A word of the prompt and the indices of its pieces among the prompt's tokens. */
export interface AttentionWord {
  text: string;
  tokens: number[];
  /** Some of its pieces fell past the sequence limit (the map is the mean of those that remain). */
  truncated: boolean;
}

export interface WordGrouping {
  words: AttentionWord[];
  /** Words with no piece left inside the sequence limit (they have no map). */
  cutWords: string[];
}

/** Maps of one generated image. */
export interface ImageAttentionMaps {
  /** The prompt as tokenized (after the pipeline's preprocessing); undefined when promptEmbeds were given. */
  prompt?: string;
  /** The pieces of the unmasked tokens, EOS included (ids when there is no tokenizer). */
  tokens: string[];
  words: AttentionWord[];
  cutWords: string[];
  /** `[tokens, gridRows, gridCols]`: the raw per-token maps (sum over steps, mean over blocks and heads). */
  tokenMaps: Tensor;
  /** `[words, height, width]`: upsampled, clamped, averaged over each word's pieces, min-max normalised. */
  wordMaps: Tensor;
}

/** What `call({ attention })` returns as `output.attention`. */
export interface AttentionMaps {
  layers: number[];
  steps: number[];
  /** Image size the word maps are at (the output images' size). */
  height: number;
  width: number;
  /** Patch grid the raw token maps are on. */
  grid: [number, number];
  images: ImageAttentionMaps[];
}

/** Checks `attention` against the model and the schedule, filling in the defaults. */
export function resolveAttentionOptions(options: AttentionOptions | true, numLayers: number, numSteps: number): Required<AttentionOptions> {
  const o = options === true ? {} : options;
  if (o === null || typeof o !== "object") throw new CrossAttentionOptionError("attention", `expected true or { layers?, steps? }, got ${String(options)}`);
  const all = (n: number) => Array.from({ length: n }, (_, i) => i);
  const indices = (v: unknown, n: number, what: string, argument: string): number[] => {
    if (!Array.isArray(v) || v.length === 0) throw new CrossAttentionOptionError(argument, `expected a non-empty list of ${what} indices in [0, ${n}), got ${String(v)}`);
    for (const i of v) {
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new CrossAttentionOptionError(argument, `expected ${what} indices that are integers in [0, ${n}), got ${JSON.stringify(i)}`);
    }
    if (new Set(v).size !== v.length) throw new CrossAttentionOptionError(argument, `lists a ${what} twice`);
    return [...v].sort((a, b) => a - b);
  };
  return {
    layers: o.layers === undefined ? all(numLayers) : indices(o.layers, numLayers, "block", "attention.layers"),
    steps: o.steps === undefined ? all(numSteps) : indices(o.steps, numSteps, "step", "attention.steps"),
  };
}

/**
 * Words of `text` (cut at white space, as T5's pre-tokenizer does) and their pieces among the ids
 * `tokenizer.encode(text, { maxLength })` gives. Each word is tokenized alone, which gives the same pieces as the
 * whole text; when special-token strings make the two differ, words are cut where a piece starts with "▁" instead.
 */
export function groupWords(tokenizer: T5Tokenizer, text: string, maxLength: number): WordGrouping {
  const all = tokenizer.tokenize(text);
  const limit = Math.min(all.length, maxLength - 1);
  const spans = wordsByText(tokenizer, text, all) ?? wordsByMarker(tokenizer, all);
  const words: AttentionWord[] = [];
  const cutWords: string[] = [];
  for (const { text: word, start, end } of spans) {
    if (start >= limit) {
      cutWords.push(word);
      continue;
    }
    if (end === start) continue; // normalised away: no piece, no map
    const last = Math.min(end, limit);
    words.push({ text: word, tokens: Array.from({ length: last - start }, (_, i) => start + i), truncated: last < end });
  }
  return { words, cutWords };
}

interface Span {
  text: string;
  start: number;
  end: number;
}

function wordsByText(tokenizer: T5Tokenizer, text: string, all: readonly number[]): Span[] | undefined {
  const spans: Span[] = [];
  let at = 0;
  for (const word of text.split(/\p{White_Space}+/u)) {
    if (word.length === 0) continue;
    const ids = tokenizer.tokenize(word);
    if (ids.some((id, k) => all[at + k] !== id)) return undefined;
    spans.push({ text: word, start: at, end: at + ids.length });
    at += ids.length;
  }
  return at === all.length ? spans : undefined;
}

function wordsByMarker(tokenizer: T5Tokenizer, all: readonly number[]): Span[] {
  const spans: Span[] = [];
  all.forEach((id, k) => {
    if (spans.length === 0 || (tokenizer.idToToken(id) ?? "").startsWith("\u2581")) spans.push({ text: "", start: k, end: k });
    spans[spans.length - 1].end = k + 1;
  });
  for (const s of spans) s.text = tokenizer.decode(all.slice(s.start, s.end)).trim();
  return spans;
}

/**
 * torch's `upsample_bicubic2d` (align_corners=False, A = −0.75, edge taps clamped) of [planes, h, w] to
 * [planes, outH, outW].
 */
export function upsampleBicubic(data: Float32Array, planes: number, h: number, w: number, outH: number, outW: number): Float32Array {
  const ys = cubicTaps(h, outH);
  const xs = cubicTaps(w, outW);
  const out = new Float32Array(planes * outH * outW);
  const rows = new Float64Array(4);
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const src = p * h * w;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        for (let r = 0; r < 4; r++) {
          const row = src + ys.index[y * 4 + r] * w;
          let v = 0;
          for (let c = 0; c < 4; c++) v += data[row + xs.index[x * 4 + c]] * xs.weight[x * 4 + c];
          rows[r] = v;
        }
        out[o++] = rows[0] * ys.weight[y * 4] + rows[1] * ys.weight[y * 4 + 1] + rows[2] * ys.weight[y * 4 + 2] + rows[3] * ys.weight[y * 4 + 3];
      }
    }
  }
  return out;
}

function cubicTaps(inSize: number, outSize: number): { index: Int32Array; weight: Float64Array } {
  const A = -0.75;
  const near = (t: number) => ((A + 2) * t - (A + 3)) * t * t + 1;
  const far = (t: number) => ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  const scale = Math.fround(inSize / outSize);
  const index = new Int32Array(outSize * 4);
  const weight = new Float64Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    const src = Math.fround(Math.fround(scale * Math.fround(o + 0.5)) - 0.5);
    const i = Math.floor(src);
    const t = Math.fround(src - i);
    const ws = [far(t + 1), near(t), near(1 - t), far(2 - t)];
    for (let k = 0; k < 4; k++) {
      index[o * 4 + k] = Math.min(Math.max(i - 1 + k, 0), inSize - 1);
      weight[o * 4 + k] = Math.fround(ws[k]);
    }
  }
  return { index, weight };
}

/** Sums the recorded steps of one call; `finish` turns the sums into maps. */
export class CrossAttentionRecorder {
  /** [rows, image tokens, text tokens]: sum over recorded steps of the mean over blocks. */
  private sum?: Float64Array;
  private dims?: [number, number, number];
  private readonly wanted: ReadonlySet<number>;
  readonly recorded: number[] = [];

  constructor(readonly options: Required<AttentionOptions>) {
    this.wanted = new Set(options.steps);
  }

  get layers(): number[] {
    return this.options.layers;
  }

  /** Whether step `i` (0-based) is recorded. */
  records(step: number): boolean {
    return this.wanted.has(step);
  }

  /** One step's [layers, rows, S, L] head-mean probabilities. */
  add(step: number, crossAttention: Tensor): void {
    const [layers, rows, s, l] = crossAttention.dims;
    if (!this.sum) {
      this.sum = new Float64Array(rows * s * l);
      this.dims = [rows, s, l];
    }
    const size = rows * s * l;
    const data = crossAttention.data;
    for (let i = 0; i < size; i++) {
      let v = 0;
      for (let layer = 0; layer < layers; layer++) v += data[layer * size + i];
      this.sum[i] += v / layers;
    }
    this.recorded.push(step);
  }

  /**
   * The maps of every conditional row. For row r, `rows[r]` has its text as tokenized (undefined without a prompt),
   * its ids (EOS included; undefined without a tokenizer) and its number of unmasked tokens. `generation` is the size
   * the latents decode to, `output` the images' size (different with resolution binning).
   */
  finish(args: {
    tokenizer: T5Tokenizer | null; maxLength: number; rows: { prompt?: string; ids?: number[]; count: number }[];
    grid: [number, number]; generation: { height: number; width: number }; output: { height: number; width: number };
  }): AttentionMaps {
    const { grid, generation, output, tokenizer } = args;
    const images: ImageAttentionMaps[] = [];
    const [s, l] = this.dims ? [this.dims[1], this.dims[2]] : [grid[0] * grid[1], 0];
    args.rows.forEach(({ prompt, ids, count }, r) => {
      // Raw per-token maps on the patch grid, [tokens, gridRows, gridCols] (image tokens are row-major).
      const tokenMaps = new Float32Array(count * s);
      for (let q = 0; q < s; q++) for (let t = 0; t < count; t++) tokenMaps[t * s + q] = this.sum ? this.sum[(r * s + q) * l + t] : 0;
      const grouping = prompt !== undefined && tokenizer ? groupWords(tokenizer, prompt, args.maxLength) : { words: [], cutWords: [] };
      const upsampled = upsampleBicubic(tokenMaps, count, grid[0], grid[1], generation.height, generation.width);
      for (let i = 0; i < upsampled.length; i++) upsampled[i] = Math.max(upsampled[i], 0);
      const sized = resizeAndCrop(upsampled, [1, count, generation.height, generation.width], output.height, output.width).data;
      images.push({
        prompt,
        tokens: Array.from({ length: count }, (_, t) => (ids && tokenizer?.idToToken(ids[t])) ?? `#${t}`),
        words: grouping.words,
        cutWords: grouping.cutWords,
        tokenMaps: { data: tokenMaps, dims: [count, grid[0], grid[1]] },
        wordMaps: { data: wordMaps(sized, output.height * output.width, grouping.words), dims: [grouping.words.length, output.height, output.width] },
      });
    });
    return { layers: this.layers, steps: [...this.recorded], height: output.height, width: output.width, grid, images };
  }
}

/** Per word: the mean of its pieces' maps, min-max normalised (a flat map becomes 0). */
export function wordMaps(tokenMaps: Float32Array, pixels: number, words: readonly AttentionWord[]): Float32Array {
  const out = new Float32Array(words.length * pixels);
  const m = new Float64Array(pixels);
  words.forEach((word, k) => {
    m.fill(0);
    for (const t of word.tokens) for (let p = 0; p < pixels; p++) m[p] += tokenMaps[t * pixels + p];
    let min = Infinity;
    let max = -Infinity;
    for (let p = 0; p < pixels; p++) {
      m[p] /= word.tokens.length;
      min = Math.min(min, m[p]);
      max = Math.max(max, m[p]);
    }
    const span = max - min;
    if (span > 0) for (let p = 0; p < pixels; p++) out[k * pixels + p] = (m[p] - min) / span;
  });
  return out;
}
