/**
 * Faces for values that are not classes of their own: a tensor (`{ data, dims }`) as its dims, dtype and value range,
 * and an array of images as one grid output (HTML with captions, one PNG, a text line). And `inspect(x)`: the full
 * dump of an object whose face is short (the pipeline, a scheduler, a model).
 */
import { inspect as utilInspect } from "util";
import { PixArtImage } from "../pipeline/image";
import type { MimeBundle } from "./display";

const typedArrays = [Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array];

type TensorLike = { data: ArrayLike<number | bigint> & { constructor: { name: string } }; dims: readonly number[] };

/** `{ data, dims }` (and nothing else) with a typed array of dims' size: the library's Tensor. */
export function isTensorLike(value: unknown): value is TensorLike {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 2 || !keys.includes("data") || !keys.includes("dims")) return false;
  const { data, dims } = value as { data: unknown; dims: unknown };
  if (!typedArrays.some((T) => data instanceof T) || !Array.isArray(dims) || !dims.every((d) => Number.isInteger(d) && d >= 0)) return false;
  return dims.reduce((a: number, d: number) => a * d, 1) === (data as ArrayLike<unknown>).length;
}

const dtypeNames: Record<string, string> = {
  Float32Array: "float32", Float64Array: "float64", Int32Array: "int32", BigInt64Array: "int64", Uint8Array: "uint8",
  Int8Array: "int8", Uint16Array: "uint16", Int16Array: "int16", Uint32Array: "uint32",
};

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 1e4 || Math.abs(x) < 1e-3 ? x.toExponential(3) : String(Number(x.toPrecision(4))));

export function tensorFace(t: TensorLike): string {
  const dtype = dtypeNames[t.data.constructor.name] ?? t.data.constructor.name;
  const n = t.data.length;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let nonFinite = 0;
  for (let i = 0; i < n; i++) {
    const v = Number(t.data[i]);
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const finite = n - nonFinite;
  const stats = finite > 0 ? `min ${fmt(min)} · max ${fmt(max)} · mean ${fmt(sum / finite)}` : "no finite values";
  return `Tensor [${t.dims.join(", ")}] ${dtype} · ${stats}${nonFinite ? ` · ${nonFinite} NaN/Inf` : ""}`;
}

function isImageArray(value: unknown): value is PixArtImage[] {
  return Array.isArray(value) && value.length > 0 && value.every((v) => v instanceof PixArtImage);
}

/** The images side by side (up to 4 per row, 8 px gaps on white), as one PNG. */
function gridPng(images: readonly PixArtImage[]): Buffer {
  const cols = Math.min(4, images.length);
  const rows = Math.ceil(images.length / cols);
  const gap = 8;
  const cellW = Math.max(...images.map((i) => i.width));
  const cellH = Math.max(...images.map((i) => i.height));
  const width = cols * cellW + (cols - 1) * gap;
  const height = rows * cellH + (rows - 1) * gap;
  const rgb = new Uint8Array(width * height * 3).fill(255);
  images.forEach((img, k) => {
    const x0 = (k % cols) * (cellW + gap);
    const y0 = Math.floor(k / cols) * (cellH + gap);
    for (let y = 0; y < img.height; y++) {
      rgb.set(img.rgb.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y0 + y) * width + x0) * 3);
    }
  });
  return new PixArtImage(width, height, rgb).toPng();
}

const caption = (img: PixArtImage, i: number): string => `[${i}] ${img.width}×${img.height}`;

/** One output for an array of images: an HTML grid with captions, the same grid as one PNG, and a text line. */
export function imageGridBundle(images: readonly PixArtImage[]): MimeBundle {
  const figures = images.map((img, i) =>
    `<figure style="margin:0;text-align:center"><img src="data:image/png;base64,${img.toPng().toString("base64")}" ` +
      `width="${img.width}" height="${img.height}" alt="${caption(img, i)}"/>` +
      `<figcaption style="font:12px monospace">${caption(img, i)}</figcaption></figure>`);
  return {
    "text/html": `<div style="display:flex;flex-wrap:wrap;gap:8px">${figures.join("")}</div>`,
    "image/png": gridPng(images).toString("base64"),
    "text/plain": `${images.length} image${images.length > 1 ? "s" : ""}: ${images.map(caption).join(", ")}`,
  };
}

/** The face bundle of `value`, or undefined when it has none here (util.inspect text is used then). */
export function faceBundle(value: unknown): MimeBundle | undefined {
  if (isImageArray(value)) return imageGridBundle(value);
  if (isTensorLike(value)) return { "text/plain": tensorFace(value) };
  return undefined;
}

/** The full dump of a value whose face is short, e.g. `inspect(pipe)`, `inspect(pipe.scheduler, 4)`. */
export function inspect(value: unknown, depth = 3): { [k: symbol]: () => MimeBundle } {
  const text = utilInspect(value, { customInspect: false, depth, breakLength: 120, maxArrayLength: 20 });
  return { [Symbol.for("Jupyter.display")]: () => ({ "text/plain": text }), [utilInspect.custom]: () => text } as never;
}
