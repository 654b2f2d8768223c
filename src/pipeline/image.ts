/**
 * Post-processing (diffusers' VaeImageProcessor.postprocess) and images as pipeline outputs.
 */
import * as fs from "fs";
import * as path from "path";
import { createCanvas, type Canvas } from "canvas";
import type { Tensor } from "../models/model";
import { inspectCustom } from "../runtime/face";

/** VAE output in [-1, 1], NCHW → values in [0, 1], NHWC (diffusers `output_type="np"`). */
export function postprocessToNhwc(image: Tensor): Tensor {
  const [n, c, h, w] = image.dims;
  const out = new Float32Array(image.data.length);
  const f = Math.fround;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      const src = (b * c + ch) * h * w;
      for (let i = 0; i < h * w; i++) {
        const v = f(f(image.data[src + i] * 0.5) + 0.5);
        out[(b * h * w + i) * c + ch] = Math.min(Math.max(v, 0), 1);
      }
    }
  }
  return { data: out, dims: [n, h, w, c] };
}

/** Python/numpy round(): halves go to the even neighbour (JS Math.round would round them up). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The encodings `PixArtImage.save` writes (node-canvas encodes PNG and JPEG, not WebP). */
export type ImageFormat = "png" | "jpeg";

const FORMATS_BY_EXTENSION: Record<string, ImageFormat> = { ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg" };

/** A file name whose extension names no format that can be written. */
export class ImageFormatError extends Error {
  override name = "ImageFormatError";
  constructor(readonly file: string) {
    super(`${file}: cannot tell the image format from the extension "${path.extname(file)}"; use .png, .jpg or .jpeg`);
  }
}

/** The format a file name's extension names (case-insensitive); ImageFormatError for anything else. */
export function imageFormatFor(file: string): ImageFormat {
  const format = FORMATS_BY_EXTENSION[path.extname(file).toLowerCase()];
  if (!format) throw new ImageFormatError(file);
  return format;
}

/** An RGB image produced by the pipeline: 8-bit pixels, PNG on demand, shown inline in notebooks. */
export class PixArtImage {
  /** RGB, 3 bytes per pixel, row-major. */
  readonly rgb: Uint8Array;

  constructor(readonly width: number, readonly height: number, rgb: Uint8Array) {
    if (rgb.length !== width * height * 3) throw new RangeError(`PixArtImage: expected ${width * height * 3} bytes of RGB, got ${rgb.length}`);
    this.rgb = rgb;
  }

  /** From one NHWC float image in [0, 1] (`(x·255).round()` with numpy's rounding, as diffusers' `numpy_to_pil`). */
  static fromFloat(nhwc: Float32Array, index: number, height: number, width: number): PixArtImage {
    const size = height * width * 3;
    const rgb = new Uint8Array(size);
    const start = index * size;
    for (let i = 0; i < size; i++) rgb[i] = roundHalfEven(Math.fround(nhwc[start + i] * 255));
    return new PixArtImage(width, height, rgb);
  }

  /**
   * The same pixels drawn as blocks of k×k, with k the smallest whole factor that makes the shorter side at least
   * `minSide` (k = 1 when it already is): for showing a tiny model's 32 px output at a size that reads, without
   * inventing detail by smoothing.
   */
  enlarged(minSide: number): PixArtImage {
    if (!Number.isFinite(minSide) || minSide < 1) throw new RangeError(`PixArtImage.enlarged: minSide must be a number >= 1, got ${minSide}`);
    const k = Math.max(1, Math.ceil(minSide / Math.min(this.width, this.height)));
    if (k === 1) return this;
    const width = this.width * k;
    const rgb = new Uint8Array(width * this.height * k * 3);
    for (let y = 0; y < this.height * k; y++) {
      const src = Math.floor(y / k) * this.width;
      for (let x = 0; x < width; x++) rgb.set(this.rgb.subarray((src + Math.floor(x / k)) * 3, (src + Math.floor(x / k)) * 3 + 3), (y * width + x) * 3);
    }
    return new PixArtImage(width, this.height * k, rgb);
  }

  toRgba(): Uint8ClampedArray {
    const rgba = new Uint8ClampedArray(this.width * this.height * 4);
    for (let p = 0; p < this.width * this.height; p++) {
      rgba[p * 4] = this.rgb[p * 3];
      rgba[p * 4 + 1] = this.rgb[p * 3 + 1];
      rgba[p * 4 + 2] = this.rgb[p * 3 + 2];
      rgba[p * 4 + 3] = 255;
    }
    return rgba;
  }

  toPng(): Buffer {
    return this.toCanvas().toBuffer("image/png");
  }

  /** JPEG bytes; `quality` in (0, 1], default 0.95. */
  toJpeg(quality = 0.95): Buffer {
    if (!(quality > 0 && quality <= 1)) throw new RangeError(`PixArtImage.toJpeg: quality must be in (0, 1], got ${quality}`);
    return this.toCanvas().toBuffer("image/jpeg", { quality });
  }

  /** Encoded bytes in the given format. */
  encode(format: ImageFormat): Buffer {
    return format === "jpeg" ? this.toJpeg() : this.toPng();
  }

  /** Writes the image in the format its extension names: .png, or .jpg / .jpeg (quality 0.95). */
  async save(file: string): Promise<void> {
    await fs.promises.writeFile(file, this.encode(imageFormatFor(file)));
  }

  private toCanvas(): Canvas {
    const canvas = createCanvas(this.width, this.height);
    const ctx = canvas.getContext("2d");
    const data = ctx.createImageData(this.width, this.height);
    data.data.set(this.toRgba());
    ctx.putImageData(data, 0, 0);
    return canvas;
  }

  /** Notebook display (the Deno/pixart-ts kernel convention): the PNG plus a text fallback. */
  [Symbol.for("Jupyter.display")](): Record<string, unknown> {
    return { "image/png": this.toPng().toString("base64"), "text/plain": this.toString() };
  }

  toString(): string {
    return `PixArtImage ${this.width}×${this.height}`;
  }

  /** util.inspect shows the size, not the pixel bytes. */
  [inspectCustom](): string {
    return this.toString();
  }
}
