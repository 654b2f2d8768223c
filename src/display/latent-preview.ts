/**
 * Latents → RGB without the VAE: each pixel's latent vector times a fixed channels×3 matrix plus a bias, mapped
 * from [-1, 1] to [0, 255]. For the SDXL VAE (PixArt-Σ's) the matrix is the linear fit of decoded colours on
 * latents that ComfyUI uses for its SDXL previews; it costs a few multiply-adds per pixel, so it runs every step.
 * Also the canvas drawing of previews, captions and step grids for the PNG fallbacks.
 */
import { createCanvas, type Canvas, type CanvasRenderingContext2D } from "canvas";

export interface LatentProjection {
  name: string;
  /** One row [r, g, b] per latent channel. */
  matrix: number[][];
  bias: number[];
}

/** SDXL VAE latent space (4 channels) → RGB: the coefficients ComfyUI publishes for SDXL latent previews. */
export const SDXL_LATENT_RGB: LatentProjection = {
  name: "sdxl-linear-rgb",
  matrix: [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
  ],
  bias: [0.1084, -0.0175, -0.0011],
};

/** The projection for a latent space: SDXL's for 4 channels, otherwise the first three channels as R, G, B. */
export function projectionFor(channels: number): LatentProjection {
  if (channels === 4) return SDXL_LATENT_RGB;
  const matrix = Array.from({ length: channels }, (_, c) => [0, 1, 2].map((k) => (k === c ? 1 : 0)));
  return { name: "first-three-channels", matrix, bias: [0, 0, 0] };
}

/** Latents [B, C, h, w] → uint8 RGB [B, h, w, 3]: rgb = clamp((latent · matrix + bias + 1) / 2, 0, 1) · 255. */
export function latentsToRgb(data: Float32Array, dims: readonly number[], projection: LatentProjection = projectionFor(dims[1])): Uint8Array {
  const [b, c, h, w] = dims;
  const plane = h * w;
  const out = new Uint8Array(b * plane * 3);
  for (let n = 0; n < b; n++) {
    for (let p = 0; p < plane; p++) {
      for (let k = 0; k < 3; k++) {
        let v = projection.bias[k];
        for (let ch = 0; ch < c; ch++) v += data[(n * c + ch) * plane + p] * (projection.matrix[ch]?.[k] ?? 0);
        out[(n * plane + p) * 3 + k] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
      }
    }
  }
  return out;
}

/** Pixels per latent pixel so that the longer side shows at least `min` px (nearest-neighbour, integer). */
export function upscaleFor(height: number, width: number, min = 128, max = 512): number {
  const side = Math.max(height, width);
  return Math.max(1, Math.min(Math.ceil(min / side), Math.floor(max / side) || 1));
}

/** Draws RGB [h, w, 3] (one batch item) at (x, y), scaled by zoom (nearest-neighbour up, smoothed down). */
export function drawRgb(ctx: CanvasRenderingContext2D, rgb: Uint8Array, offset: number, height: number, width: number, x: number, y: number, zoom: number): void {
  const small = createCanvas(width, height);
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(width, height);
  for (let p = 0; p < height * width; p++) {
    img.data[p * 4] = rgb[offset + p * 3];
    img.data[p * 4 + 1] = rgb[offset + p * 3 + 1];
    img.data[p * 4 + 2] = rgb[offset + p * 3 + 2];
    img.data[p * 4 + 3] = 255;
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = zoom < 1;
  ctx.drawImage(small, x, y, width * zoom, height * zoom);
}

export interface PreviewTile {
  /** uint8 RGB [B, h, w, 3]. */
  rgb: Uint8Array;
  label: string;
  /** Its own size when it differs from the grid's (e.g. a VAE-decoded image beside latent previews); drawn at the same size. */
  height?: number;
  width?: number;
}

/**
 * A PNG with one row per tile (each row the batch side by side) or, with `columns`, tiles in a grid; each tile
 * labelled underneath, and an optional caption (with a progress bar when `fraction` is given) at the bottom.
 */
export function previewPng(tiles: PreviewTile[], dims: { batch: number; height: number; width: number }, options: { columns?: number; caption?: string; fraction?: number } = {}): Buffer {
  const zoom = upscaleFor(dims.height, dims.width);
  const tileW = dims.width * zoom * dims.batch + (dims.batch - 1) * 2;
  const tileH = dims.height * zoom;
  const label = 16;
  const gap = 6;
  const columns = Math.max(1, Math.min(options.columns ?? 1, tiles.length));
  const rows = Math.ceil(tiles.length / columns);
  const captionH = options.caption ? 22 + (options.fraction === undefined ? 0 : 8) : 0;
  const width = Math.max(columns * (tileW + gap) - gap, options.caption ? 320 : 0);
  const height = rows * (tileH + label + gap) - gap + captionH;
  const canvas: Canvas = createCanvas(width, height);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  tiles.forEach((tile, i) => {
    const x = (i % columns) * (tileW + gap);
    const y = Math.floor(i / columns) * (tileH + label + gap);
    const [h, w] = [tile.height ?? dims.height, tile.width ?? dims.width];
    const scale = (dims.height * zoom) / h;
    for (let n = 0; n < dims.batch; n++) drawRgb(ctx, tile.rgb, n * h * w * 3, h, w, x + n * (dims.width * zoom + 2), y, scale);
    ctx.fillStyle = "#333333";
    ctx.fillText(tile.label, x + 2, y + tileH + 12);
  });
  if (options.caption) {
    const y = height - captionH;
    if (options.fraction !== undefined) {
      ctx.fillStyle = "#dddddd";
      ctx.fillRect(0, y + 2, width, 5);
      ctx.fillStyle = "#3b7dd8";
      ctx.fillRect(0, y + 2, Math.round(width * Math.min(1, Math.max(0, options.fraction))), 5);
    }
    ctx.fillStyle = "#222222";
    ctx.font = "12px sans-serif";
    ctx.fillText(options.caption, 2, height - 6);
  }
  return canvas.toBuffer("image/png");
}
