/**
 * Resolution binning (diffusers' PixArt pipelines): a requested size is mapped to the closest aspect-ratio
 * bucket the model was trained on, generated there, then resized and centre-cropped back to the request.
 */

/** [height/width ratio key, height, width], in diffusers' (ascending) order: on a tie the first key wins. */
type BinTable = readonly (readonly [string, number, number])[];

const TABLES: Record<string, BinTable> = {
  256: [
    ["0.25", 128, 512], ["0.28", 128, 464], ["0.32", 144, 448], ["0.33", 144, 432], ["0.35", 144, 416], ["0.4", 160, 400],
    ["0.42", 160, 384], ["0.48", 176, 368], ["0.5", 176, 352], ["0.52", 176, 336], ["0.57", 192, 336], ["0.6", 192, 320],
    ["0.68", 208, 304], ["0.72", 208, 288], ["0.78", 224, 288], ["0.82", 224, 272], ["0.88", 240, 272], ["0.94", 240, 256],
    ["1.0", 256, 256], ["1.07", 256, 240], ["1.13", 272, 240], ["1.21", 272, 224], ["1.29", 288, 224], ["1.38", 288, 208],
    ["1.46", 304, 208], ["1.67", 320, 192], ["1.75", 336, 192], ["2.0", 352, 176], ["2.09", 368, 176], ["2.4", 384, 160],
    ["2.5", 400, 160], ["3.0", 432, 144], ["4.0", 512, 128],
  ],
  512: [
    ["0.25", 256, 1024], ["0.28", 256, 928], ["0.32", 288, 896], ["0.33", 288, 864], ["0.35", 288, 832], ["0.4", 320, 800],
    ["0.42", 320, 768], ["0.48", 352, 736], ["0.5", 352, 704], ["0.52", 352, 672], ["0.57", 384, 672], ["0.6", 384, 640],
    ["0.68", 416, 608], ["0.72", 416, 576], ["0.78", 448, 576], ["0.82", 448, 544], ["0.88", 480, 544], ["0.94", 480, 512],
    ["1.0", 512, 512], ["1.07", 512, 480], ["1.13", 544, 480], ["1.21", 544, 448], ["1.29", 576, 448], ["1.38", 576, 416],
    ["1.46", 608, 416], ["1.67", 640, 384], ["1.75", 672, 384], ["2.0", 704, 352], ["2.09", 736, 352], ["2.4", 768, 320],
    ["2.5", 800, 320], ["3.0", 864, 288], ["4.0", 1024, 256],
  ],
  1024: [
    ["0.25", 512, 2048], ["0.28", 512, 1856], ["0.32", 576, 1792], ["0.33", 576, 1728], ["0.35", 576, 1664], ["0.4", 640, 1600],
    ["0.42", 640, 1536], ["0.48", 704, 1472], ["0.5", 704, 1408], ["0.52", 704, 1344], ["0.57", 768, 1344], ["0.6", 768, 1280],
    ["0.68", 832, 1216], ["0.72", 832, 1152], ["0.78", 896, 1152], ["0.82", 896, 1088], ["0.88", 960, 1088], ["0.94", 960, 1024],
    ["1.0", 1024, 1024], ["1.07", 1024, 960], ["1.13", 1088, 960], ["1.21", 1088, 896], ["1.29", 1152, 896], ["1.38", 1152, 832],
    ["1.46", 1216, 832], ["1.67", 1280, 768], ["1.75", 1344, 768], ["2.0", 1408, 704], ["2.09", 1472, 704], ["2.4", 1536, 640],
    ["2.5", 1600, 640], ["3.0", 1728, 576], ["4.0", 2048, 512],
  ],
  2048: [
    ["0.25", 1024, 4096], ["0.26", 1024, 3968], ["0.27", 1024, 3840], ["0.28", 1024, 3712], ["0.32", 1152, 3584], ["0.33", 1152, 3456],
    ["0.35", 1152, 3328], ["0.4", 1280, 3200], ["0.42", 1280, 3072], ["0.48", 1408, 2944], ["0.5", 1408, 2816], ["0.52", 1408, 2688],
    ["0.57", 1536, 2688], ["0.6", 1536, 2560], ["0.68", 1664, 2432], ["0.72", 1664, 2304], ["0.78", 1792, 2304], ["0.82", 1792, 2176],
    ["0.88", 1920, 2176], ["0.94", 1920, 2048], ["1.0", 2048, 2048], ["1.07", 2048, 1920], ["1.13", 2176, 1920], ["1.21", 2176, 1792],
    ["1.29", 2304, 1792], ["1.38", 2304, 1664], ["1.46", 2432, 1664], ["1.67", 2560, 1536], ["1.75", 2688, 1536], ["2.0", 2816, 1408],
    ["2.09", 2944, 1408], ["2.4", 3072, 1280], ["2.5", 3200, 1280], ["2.89", 3328, 1152], ["3.0", 3456, 1152], ["3.11", 3584, 1152],
    ["3.62", 3712, 1024], ["3.75", 3840, 1024], ["3.88", 3968, 1024], ["4.0", 4096, 1024],
  ],
};

/** Table by transformer `sample_size` (latent pixels): 32 → 256-px bins, 64 → 512, 128 → 1024, 256 → 2048. */
const TABLE_BY_SAMPLE_SIZE: Record<number, string> = { 32: "256", 64: "512", 128: "1024", 256: "2048" };

export class ResolutionBinningError extends Error {
  override name = "ResolutionBinningError";
}

export function binTableFor(sampleSize: number): BinTable {
  const table = TABLES[TABLE_BY_SAMPLE_SIZE[sampleSize]];
  if (!table) {
    throw new ResolutionBinningError(
      `useResolutionBinning: no aspect-ratio table for a transformer with sample_size ${sampleSize} ` +
        "(tables exist for 32, 64, 128 and 256); pass useResolutionBinning: false",
    );
  }
  return table;
}

/** The bucket (height, width) whose ratio key is closest to height / width. */
export function classifyHeightWidthBin(height: number, width: number, table: BinTable): { height: number; width: number } {
  const ratio = height / width;
  let best = table[0];
  for (const entry of table) {
    if (Math.abs(Number(entry[0]) - ratio) < Math.abs(Number(best[0]) - ratio)) best = entry;
  }
  return { height: best[1], width: best[2] };
}

/**
 * Bilinear resize (torch `F.interpolate(mode="bilinear", align_corners=False)`, no antialias) so the image
 * covers newHeight × newWidth, then a centre crop to exactly that size. NCHW float data in, NCHW out.
 */
export function resizeAndCrop(data: Float32Array, dims: readonly number[], newHeight: number, newWidth: number): { data: Float32Array; dims: number[] } {
  const [n, c, h, w] = dims;
  if (h === newHeight && w === newWidth) return { data, dims: [...dims] };
  const ratio = Math.max(newHeight / h, newWidth / w);
  const rh = Math.trunc(h * ratio);
  const rw = Math.trunc(w * ratio);
  const ys = linearTaps(h, rh);
  const xs = linearTaps(w, rw);
  const top = Math.floor((rh - newHeight) / 2);
  const left = Math.floor((rw - newWidth) / 2);
  const out = new Float32Array(n * c * newHeight * newWidth);
  const f = Math.fround;
  let o = 0;
  for (let plane = 0; plane < n * c; plane++) {
    const src = plane * h * w;
    for (let y = top; y < top + newHeight; y++) {
      const r0 = src + ys.i0[y] * w;
      const r1 = src + ys.i1[y] * w;
      for (let x = left; x < left + newWidth; x++) {
        // torch's CPU kernel accumulates `out = t0·w0; out += t1·w1`, which the compiler fuses into an FMA.
        const a = fma32(data[r0 + xs.i1[x]], xs.w1[x], f(data[r0 + xs.i0[x]] * xs.w0[x]));
        const b = fma32(data[r1 + xs.i1[x]], xs.w1[x], f(data[r1 + xs.i0[x]] * xs.w0[x]));
        out[o++] = fma32(b, ys.w1[y], f(a * ys.w0[y]));
      }
    }
  }
  return { data: out, dims: [n, c, newHeight, newWidth] };
}

/** float32 fused multiply-add: the product of two floats is exact in a double, so one rounding remains (two, rarely). */
function fma32(a: number, b: number, c: number): number {
  return Math.fround(a * b + c);
}

/** Source indices and weights per output position, computed in float32 as torch does for float tensors. */
function linearTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; w0: Float32Array; w1: Float32Array } {
  const f = Math.fround;
  const scale = f(inSize / outSize);
  const taps = { i0: new Int32Array(outSize), i1: new Int32Array(outSize), w0: new Float32Array(outSize), w1: new Float32Array(outSize) };
  for (let d = 0; d < outSize; d++) {
    // scale·(d + 0.5) − 0.5 in float32, fused into one FMA by the compiler in torch's kernel.
    const src = Math.max(fma32(scale, d + 0.5, -0.5), 0);
    const i0 = Math.floor(src);
    const l1 = Math.min(Math.max(f(src - i0), 0), 1);
    taps.i0[d] = i0;
    taps.i1[d] = i0 + (i0 < inSize - 1 ? 1 : 0);
    taps.w1[d] = l1;
    taps.w0[d] = f(1 - l1);
  }
  return taps;
}
