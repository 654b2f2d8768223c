/**
 * Tiled VAE decoding, as diffusers' `AutoencoderKL.tiled_decode`: the latents are cut into overlapping square
 * tiles, each tile is decoded on its own, each decoded tile is blended linearly into its upper and left
 * neighbours over `blendExtent` pixels, and the top-left `rowLimit` × `rowLimit` of every tile is kept.
 *
 * Blending happens in place and in row-major order, so a tile is blended against neighbours that are already
 * blended themselves (diffusers does the same). Only the previous row of decoded tiles is kept, so the memory
 * of a decode is one tile's activations plus two rows of decoded tiles and the output.
 */
import type { Tensor } from "./model";

/** diffusers' tiling numbers for one VAE: tile sizes and the derived stride, blend width and crop. */
export interface TileGeometry {
  /** `tile_sample_min_size`: tile edge in pixels. */
  sampleSize: number;
  /** `tile_latent_min_size`: tile edge in latents. */
  latentSize: number;
  /** `tile_overlap_factor`. */
  overlap: number;
  /** Latents between the starts of neighbouring tiles (`overlap_size`). */
  latentStride: number;
  /** Pixels blended across each seam. */
  blendExtent: number;
  /** Pixels kept from each tile along each axis. */
  rowLimit: number;
  /** Pixels per latent. */
  scale: number;
}

/** The geometry diffusers derives from `sample_size`, the VAE's scale factor and the overlap (Python's int() truncates). */
export function tileGeometry(sampleSize: number, scale: number, overlap: number): TileGeometry {
  const latentSize = Math.trunc(sampleSize / scale);
  const blendExtent = Math.trunc(sampleSize * overlap);
  return {
    sampleSize, latentSize, overlap, scale, blendExtent,
    latentStride: Math.trunc(latentSize * (1 - overlap)),
    rowLimit: sampleSize - blendExtent,
  };
}

/** Tile starts along one latent axis: range(0, size, stride). */
function starts(size: number, stride: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < size; i += stride) out.push(i);
  return out;
}

/** z[:, :, y0:y1, x0:x1] as a new dense tensor. */
function cropLatents(z: Tensor, y0: number, y1: number, x0: number, x1: number): Tensor {
  const [b, c, h, w] = z.dims;
  const th = y1 - y0;
  const tw = x1 - x0;
  const out = new Float32Array(b * c * th * tw);
  for (let p = 0; p < b * c; p++) {
    for (let y = 0; y < th; y++) {
      const src = (p * h + y0 + y) * w + x0;
      out.set(z.data.subarray(src, src + tw), (p * th + y) * tw);
    }
  }
  return { data: out, dims: [b, c, th, tw] };
}

/** blend_v: the first rows of `b` fade in from the last rows of `a` (the tile above). Same width, in place. */
function blendVertical(a: Tensor, b: Tensor, extent: number): void {
  const [planes, , ah, w] = a.dims;
  const bh = b.dims[2];
  const e = Math.min(ah, bh, extent);
  const channels = planes * a.dims[1];
  for (let y = 0; y < e; y++) {
    const wa = Math.fround(1 - y / e);
    const wb = Math.fround(y / e);
    for (let p = 0; p < channels; p++) {
      const ra = (p * ah + ah - e + y) * w;
      const rb = (p * bh + y) * w;
      for (let x = 0; x < w; x++) b.data[rb + x] = Math.fround(a.data[ra + x] * wa) + Math.fround(b.data[rb + x] * wb);
    }
  }
}

/** blend_h: the first columns of `b` fade in from the last columns of `a` (the tile to the left). Same height, in place. */
function blendHorizontal(a: Tensor, b: Tensor, extent: number): void {
  const [planes, ch, h, aw] = a.dims;
  const bw = b.dims[3];
  const e = Math.min(aw, bw, extent);
  for (let x = 0; x < e; x++) {
    const wa = Math.fround(1 - x / e);
    const wb = Math.fround(x / e);
    for (let r = 0; r < planes * ch * h; r++) {
      const ia = r * aw + aw - e + x;
      const ib = r * bw + x;
      b.data[ib] = Math.fround(a.data[ia] * wa) + Math.fround(b.data[ib] * wb);
    }
  }
}

/** Copies tile[:, :, :rows, :cols] into `out` at (y0, x0). */
function paste(out: Tensor, tile: Tensor, y0: number, x0: number, rows: number, cols: number): void {
  const [planes, ch, th, tw] = tile.dims;
  const [, , oh, ow] = out.dims;
  for (let p = 0; p < planes * ch; p++) {
    for (let y = 0; y < rows; y++) {
      const src = (p * th + y) * tw;
      out.data.set(tile.data.subarray(src, src + cols), (p * oh + y0 + y) * ow + x0);
    }
  }
}

/**
 * diffusers' `tiled_decode(z)`: `decodeTile` runs post_quant_conv + decoder on one tile of latents. The output
 * is [B, out, scale·h, scale·w] like a plain decode.
 */
export async function tiledDecode(z: Tensor, g: TileGeometry, decodeTile: (tile: Tensor) => Promise<Tensor>): Promise<Tensor> {
  const [b, , h, w] = z.dims;
  const ys = starts(h, g.latentStride);
  const xs = starts(w, g.latentStride);
  // Each tile keeps min(rowLimit, its decoded size). With diffusers' default overlap the kept parts add up to
  // scale·h (and ·w); with other overlaps rowLimit and the stride in pixels can differ by a few pixels, and so
  // does diffusers' output size.
  const kept = (start: number, size: number) => Math.min(g.rowLimit, g.scale * Math.min(g.latentSize, size - start));
  const outH = ys.reduce((n, i) => n + kept(i, h), 0);
  const outW = xs.reduce((n, j) => n + kept(j, w), 0);
  let out: Tensor | undefined;
  let above: Tensor[] = [];
  let y0 = 0;
  for (const i of ys) {
    const row: Tensor[] = [];
    let x0 = 0;
    for (const [j, jStart] of xs.entries()) {
      const tile = await decodeTile(cropLatents(z, i, Math.min(i + g.latentSize, h), jStart, Math.min(jStart + g.latentSize, w)));
      if (above.length) blendVertical(above[j], tile, g.blendExtent);
      if (j > 0) blendHorizontal(row[j - 1], tile, g.blendExtent);
      row.push(tile);
      out ??= { data: new Float32Array(b * tile.dims[1] * outH * outW), dims: [b, tile.dims[1], outH, outW] };
      const rows = kept(i, h);
      const cols = kept(jStart, w);
      paste(out, tile, y0, x0, rows, cols);
      x0 += cols;
    }
    y0 += kept(i, h);
    above = row;
  }
  return out!;
}
