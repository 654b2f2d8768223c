/**
 * Cross-attention maps in a notebook: the application/vnd.pixart.attention+json payload (schemas/attention.schema.json),
 * a PNG grid of heat maps over the image, one panel per word with the word as label, and a short text/plain.
 *
 *   const out = await pipe.call({ prompt, attention: true });
 *   showAttention(out.attention!, out.images);      // the cell's value renders as the bundle
 */
import { createCanvas, type CanvasRenderingContext2D } from "canvas";
import type { AttentionMaps, ImageAttentionMaps } from "../pipeline/attention-maps";
import type { PixArtImage } from "../pipeline/image";
import { resizeAndCrop } from "../pipeline/resolution-binning";
import { encodeFloat32, encodeUint8, quantizeUint8 } from "./arrays";
import { jupyterDisplay, type Displayable, type MimeBundle } from "./display";
import type { AttentionPayload } from "./payloads";
import { ATTENTION_MIME } from "./schemas";

export interface AttentionDisplayOptions {
  /** Longest side of the maps (and image) in the payload, in pixels; larger images are resampled. Default 256. */
  maxSide?: number;
  /** Longest side of one panel of the PNG. Default 128. */
  panel?: number;
  /** Panels per line of the PNG (the image, then its words). Default 6. */
  columns?: number;
  /**
   * Blend each heat map over the image in the PNG (default true). Off, the heat maps are drawn alone (beside the
   * image), which keeps the PNG several times smaller for noisy images.
   */
  overlay?: boolean;
}

/** Inferno colour map stops (perceptually uniform, dark → bright), interpolated linearly. */
const INFERNO: readonly [number, number, number][] = [
  [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
];

function inferno(v: number): [number, number, number] {
  const x = Math.min(Math.max(v, 0), 1) * (INFERNO.length - 1);
  const i = Math.min(Math.floor(x), INFERNO.length - 2);
  const t = x - i;
  const [a, b] = [INFERNO[i], INFERNO[i + 1]];
  return [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t];
}

/** The image size scaled so its longest side is `side` (at most `side` unless `enlarge`). */
function mapSize(height: number, width: number, side: number, enlarge: boolean): [number, number] {
  const f = enlarge ? side / Math.max(height, width) : Math.min(1, side / Math.max(height, width));
  return [Math.max(1, Math.round(height * f)), Math.max(1, Math.round(width * f))];
}

/** Planes [n, h, w] resampled (bilinear, like the images' resize-back) to [n, mh, mw]. */
function resample(data: Float32Array, planes: number, h: number, w: number, mh: number, mw: number): Float32Array {
  return resizeAndCrop(data, [1, planes, h, w], mh, mw).data;
}

function imageRgb(image: PixArtImage, mh: number, mw: number): Uint8Array {
  const { width: w, height: h, rgb } = image;
  const planar = new Float32Array(3 * h * w);
  for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) planar[c * h * w + p] = rgb[p * 3 + c];
  const small = resample(planar, 3, h, w, mh, mw);
  const out = new Uint8Array(mh * mw * 3);
  for (let p = 0; p < mh * mw; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(Math.min(255, Math.max(0, small[c * mh * mw + p])));
  return out;
}

interface Prepared {
  maps: ImageAttentionMaps;
  wordMaps: Float32Array;
  rgb?: Uint8Array;
}

function prepare(maps: AttentionMaps, images: readonly PixArtImage[] | undefined, side: number, enlarge = false): { size: [number, number]; items: Prepared[] } {
  const size = mapSize(maps.height, maps.width, side, enlarge);
  const items = maps.images.map((m, r): Prepared => {
    const image = images?.[r];
    return {
      maps: m,
      wordMaps: resample(m.wordMaps.data, m.words.length, maps.height, maps.width, size[0], size[1]),
      rgb: image && image.width === maps.width && image.height === maps.height ? imageRgb(image, size[0], size[1]) : undefined,
    };
  });
  return { size, items };
}

/** The application/vnd.pixart.attention+json payload (version 1). */
export function attentionPayload(maps: AttentionMaps, images?: readonly PixArtImage[], options: AttentionDisplayOptions = {}): AttentionPayload {
  const { size, items } = prepare(maps, images, options.maxSide ?? 256);
  return {
    version: 1,
    height: maps.height,
    width: maps.width,
    grid: [...maps.grid],
    layers: [...maps.layers],
    steps: [...maps.steps],
    images: items.map(({ maps: m, wordMaps, rgb }) => ({
      ...(m.prompt !== undefined && { prompt: m.prompt }),
      tokens: [...m.tokens],
      words: m.words.map((w) => ({ text: w.text, tokens: [...w.tokens], truncated: w.truncated })),
      cutWords: [...m.cutWords],
      tokenMaps: encodeFloat32(m.tokenMaps.data, m.tokenMaps.dims),
      wordMaps: quantizeUint8(wordMaps, [m.words.length, ...size], { min: 0, max: 1 }),
      ...(rgb && { image: encodeUint8(rgb, [...size, 3]) }),
    })),
  };
}

/** The PNG: per image a caption line, then the image and one heat map per word (over the image when given), labelled. */
export function attentionPng(maps: AttentionMaps, images?: readonly PixArtImage[], options: AttentionDisplayOptions = {}): Buffer {
  const { size, items } = prepare(maps, images, options.panel ?? 128, true);
  const [ph, pw] = size;
  const columns = Math.max(1, options.columns ?? 6);
  const gap = 6;
  const label = 16;
  const caption = 18;
  const lines = items.map((it) => Math.ceil((it.maps.words.length + (it.rgb ? 1 : 0)) / columns) || 1);
  const width = gap + columns * (pw + gap);
  const height = gap + items.reduce((h, _, r) => h + caption + lines[r] * (ph + label + gap), 0);
  const canvas = createCanvas(Math.max(width, 200), height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  let y = gap;
  items.forEach((it, r) => {
    ctx.fillStyle = "#222222";
    ctx.font = "12px sans-serif";
    const cut = it.maps.cutWords.length > 0 ? ` (${it.maps.cutWords.length} words past the token limit)` : "";
    ctx.fillText(fit(ctx, `image ${r}: ${it.maps.prompt ?? "(prompt embeddings)"}${cut}`, canvas.width - 2 * gap), gap, y + 12);
    y += caption;
    const panels: { name: string; pixels: Uint8ClampedArray }[] = [];
    if (it.rgb) panels.push({ name: "image", pixels: overlay(it.rgb, undefined, ph * pw) });
    it.maps.words.forEach((w, k) => panels.push({
      name: w.truncated ? `${w.text}…` : w.text,
      pixels: overlay(options.overlay === false ? undefined : it.rgb, it.wordMaps.subarray(k * ph * pw, (k + 1) * ph * pw), ph * pw),
    }));
    panels.forEach((p, i) => {
      const x = gap + (i % columns) * (pw + gap);
      const top = y + Math.floor(i / columns) * (ph + label + gap);
      const data = ctx.createImageData(pw, ph);
      data.data.set(p.pixels);
      ctx.putImageData(data, x, top);
      ctx.fillStyle = "#222222";
      ctx.font = "12px sans-serif";
      ctx.fillText(fit(ctx, p.name, pw), x, top + ph + 12);
    });
    y += lines[r] * (ph + label + gap);
  });
  return canvas.toBuffer("image/png", { compressionLevel: 9 });
}

/** RGBA of a heat map blended over the image (40 % image, 60 % colour), or the colour map alone, or the image alone. */
function overlay(rgb: Uint8Array | undefined, heat: Float32Array | undefined, pixels: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(pixels * 4);
  for (let p = 0; p < pixels; p++) {
    const c = heat ? inferno(heat[p]) : undefined;
    for (let k = 0; k < 3; k++) {
      const img = rgb ? rgb[p * 3 + k] : undefined;
      out[p * 4 + k] = c && img !== undefined ? 0.4 * img + 0.6 * c[k] : (c?.[k] ?? img ?? 0);
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}

function fit(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let t = text;
  while (t.length > 1 && ctx.measureText(`${t}…`).width > width) t = t.slice(0, -1);
  return `${t}…`;
}

/** A short summary: what was recorded, and per image its words. */
export function attentionText(maps: AttentionMaps): string {
  const steps = maps.steps.length;
  const head = `Cross-attention maps ${maps.width}×${maps.height}: ${maps.images.length} image(s), blocks ${range(maps.layers)}, ` +
    `${steps} step${steps === 1 ? "" : "s"} (${range(maps.steps)}), patch grid ${maps.grid[0]}×${maps.grid[1]}`;
  const lines = maps.images.map((m, r) => `  image ${r}: ${m.words.length} words [${m.words.map((w) => w.text).join(" ")}]` +
    (m.cutWords.length > 0 ? `, ${m.cutWords.length} past the token limit` : ""));
  return [head, ...lines].join("\n");
}

function range(xs: readonly number[]): string {
  if (xs.length === 0) return "none";
  const contiguous = xs.every((x, i) => i === 0 || x === xs[i - 1] + 1);
  return contiguous && xs.length > 2 ? `${xs[0]}–${xs[xs.length - 1]}` : xs.join(", ");
}

/** The MIME bundle: the custom JSON, the PNG fallback and text/plain. */
export function attentionBundle(maps: AttentionMaps, images?: readonly PixArtImage[], options: AttentionDisplayOptions = {}): MimeBundle {
  return {
    [ATTENTION_MIME]: attentionPayload(maps, images, options),
    "image/png": attentionPng(maps, images, options).toString("base64"),
    "text/plain": attentionText(maps),
  };
}

/** A value that renders as the attention bundle when it is a cell's result (or is passed to `display`). */
export function showAttention(maps: AttentionMaps, images?: readonly PixArtImage[], options: AttentionDisplayOptions = {}): Displayable {
  return {
    [jupyterDisplay]: () => attentionBundle(maps, images, options),
    toString: () => attentionText(maps),
  } as Displayable;
}
